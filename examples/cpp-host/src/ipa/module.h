/*
 * What every C++ module of this host exports, from one class: the host's
 * own interface (`hostModuleInfo`, found with dlsym when the module is
 * trusted, as libcamera finds `ipaModuleInfo`) and the modhash module ABI
 * (modhash_plugin.h), through which an untrusted module is run in the
 * isolated worker. Method 0 of the ABI is ModuleInterface::process.
 */
#pragma once

#include <new>
#include <string>

#include <host/module_manager.h>
#include <modhash_plugin.h>

namespace host::module {

template<typename Module>
int32_t create(const uint8_t *, size_t, void **instance, modhash_sink *err)
{
	static const char oom[] = "out of memory";
	*instance = new (std::nothrow) Module();
	if (*instance)
		return MODHASH_STATUS_OK;
	err->write(err->ctx, reinterpret_cast<const uint8_t *>(oom), sizeof(oom) - 1);
	return MODHASH_STATUS_ERROR;
}

template<typename Module>
int32_t call(void *instance, uint32_t method, const uint8_t *input, size_t length,
	     modhash_sink *out)
{
	try {
		std::string answer = method == 0
			? static_cast<Module *>(instance)->process(
				  std::string(reinterpret_cast<const char *>(input), length))
			: std::string("unknown method; only method 0 (process) exists");
		out->write(out->ctx, reinterpret_cast<const uint8_t *>(answer.data()),
			   answer.size());
		return method == 0 ? MODHASH_STATUS_OK : MODHASH_STATUS_ERROR;
	} catch (...) {
		static const char what[] = "the module threw an exception";
		out->write(out->ctx, reinterpret_cast<const uint8_t *>(what), sizeof(what) - 1);
		return MODHASH_STATUS_PANIC;
	}
}

template<typename Module>
void destroy(void *instance)
{
	delete static_cast<Module *>(instance);
}

template<typename Module>
ModuleInterface *make()
{
	return new Module();
}

} /* namespace host::module */

#define HOST_MODULE(Module, NAME)                                                   \
	extern "C" {                                                                \
	__attribute__((visibility("default"))) extern const host::ModuleInfo        \
		hostModuleInfo;                                                     \
	const host::ModuleInfo hostModuleInfo = {                                   \
		host::kModuleAbiVersion, NAME, host::module::make<Module>,          \
	};                                                                          \
	static const modhash_plugin_v1_table module_table = {                       \
		MODHASH_PLUGIN_ABI_VERSION, sizeof(modhash_plugin_v1_table), NAME,  \
		host::module::create<Module>, host::module::call<Module>,           \
		host::module::destroy<Module>,                                      \
	};                                                                          \
	__attribute__((visibility("default"))) const modhash_plugin_v1_table *      \
	modhash_plugin_v1(void)                                                     \
	{                                                                           \
		return &module_table;                                               \
	}                                                                           \
	}
