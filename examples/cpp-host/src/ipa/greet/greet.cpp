/* An in-tree module: it greets, naming the libhost it runs against. */
#include "../module.h"

namespace {

class Greet : public host::ModuleInterface
{
public:
	std::string process(const std::string &input) override
	{
		return "greet: hello " + input + " (libhost " + host::version() + ")";
	}
};

} /* namespace */

HOST_MODULE(Greet, "greet")
