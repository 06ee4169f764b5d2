/* An in-tree module: it counts the bytes it is given. */
#include "../module.h"

namespace {

class Count : public host::ModuleInterface
{
public:
	std::string process(const std::string &input) override
	{
		return "count: " + std::to_string(input.size()) + " bytes (libhost " +
		       host::version() + ")";
	}
};

} /* namespace */

HOST_MODULE(Count, "count")
