#include <host/module_manager.h>

namespace host {

const char *version()
{
	return "0.1.0";
}

} /* namespace host */
