/* An out-of-tree module, trusted by its vendor's .sign file. */
#include "module.h"

namespace {

class Vendor : public host::ModuleInterface
{
public:
	std::string process(const std::string &input) override
	{
		return "vendor: " + input + " received";
	}
};

} /* namespace */

HOST_MODULE(Vendor, "vendor")
