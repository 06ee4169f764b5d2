/*
 * libhost's public interface: the module manager, as libcamera's
 * IPAManager, and the interface every module implements.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace host {

/* The interface a module implements, like libcamera's IPAInterface. */
class ModuleInterface
{
public:
	virtual ~ModuleInterface() = default;
	virtual std::string process(const std::string &input) = 0;
};

/*
 * What every module exports as `hostModuleInfo`, found with dlsym, like
 * libcamera's `ipaModuleInfo`.
 */
struct ModuleInfo {
	uint32_t abiVersion;
	const char *name;
	ModuleInterface *(*create)();
};

constexpr uint32_t kModuleAbiVersion = 1;

/* The version of libhost, which in-tree modules call (they link to it). */
const char *version();

/* Where a module ended up. */
struct LoadResult {
	std::string path;    /* relative to the module directory's parent */
	std::string verdict; /* modhash's verdict text */
	std::string where;   /* "in-process", "isolated (worker)" or "refused" */
	std::string output;  /* the module's answer to "ping", or the reason */
};

class ModuleManager
{
public:
	/*
	 * `libdir` is the installed lib directory holding host/ipa and
	 * host/ipa-extra, `manifest` the installed manifest, `worker` the
	 * modhash worker executable. Throws std::runtime_error on a
	 * misconfigured installation (unsealed, stale manifest, no worker).
	 */
	ModuleManager(const std::string &libdir, const std::string &manifest,
		      const std::string &worker);
	~ModuleManager();

	ModuleManager(const ModuleManager &) = delete;
	ModuleManager &operator=(const ModuleManager &) = delete;

	/* Loads every module of both directories, in name order. */
	std::vector<LoadResult> loadAll();

private:
	struct Private;
	std::unique_ptr<Private> d_;
};

} /* namespace host */
