/*
 * The module manager: what libcamera's IPAManager does, with modhash
 * deciding. In-tree modules (host/ipa) must be trusted by the hash sealed
 * into this library: anything else there was modified and is refused.
 * Out-of-tree modules (host/ipa-extra) may be trusted by a .sign file made
 * with the vendor key compiled in here; the others run in a sandboxed
 * worker process.
 */
#include <host/module_manager.h>

#include <algorithm>
#include <dirent.h>
#include <dlfcn.h>
#include <stdexcept>

#include <modhash.h>
#include <modhash_anchor.h>

/* The trust anchor, sealed by `modhash seal` after installation. */
MODHASH_ANCHOR(host_anchor);

extern const unsigned char vendorPublicKey[];
extern const size_t vendorPublicKeyLength;

namespace host {

namespace {

std::runtime_error failure(const std::string &what, modhash_status status)
{
	return std::runtime_error(what + ": " + modhash_status_name(status) + ": " +
				  modhash_last_error());
}

modhash_host *buildHost(const std::string &manifest, modhash_untrusted_action action,
			const std::string &worker, bool vendorKey)
{
	modhash_host_builder *builder = nullptr;
	modhash_status status = modhash_host_builder_new(&host_anchor, sizeof(host_anchor),
							 &builder);
	if (status != MODHASH_OK)
		throw failure("anchor", status);
	modhash_host_builder_manifest_file(builder, manifest.c_str());
	modhash_host_builder_untrusted(builder, action);
	modhash_host_builder_worker(builder, worker.c_str());
	if (vendorKey) {
		status = modhash_host_builder_libcamera_key(builder, vendorPublicKey,
							    vendorPublicKeyLength);
		if (status != MODHASH_OK) {
			modhash_host_builder_free(builder);
			throw failure("vendor key", status);
		}
	}
	modhash_host *host = nullptr;
	status = modhash_host_build(builder, &host);
	if (status != MODHASH_OK)
		throw failure("host", status);
	return host;
}

std::vector<std::string> modulesIn(const std::string &dir)
{
	std::vector<std::string> names;
	DIR *d = opendir(dir.c_str());
	if (!d)
		return names;
	while (const dirent *entry = readdir(d)) {
		std::string name = entry->d_name;
		if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0)
			names.push_back(name);
	}
	closedir(d);
	std::sort(names.begin(), names.end());
	return names;
}

} /* namespace */


struct ModuleManager::Private {
	std::string libdir;
	modhash_host *inTree = nullptr;
	modhash_host *extra = nullptr;
	/* In-process modules: the instance, then the library it came from. */
	std::vector<std::pair<ModuleInterface *, modhash_library *>> opened;
	std::vector<modhash_module *> isolated;

	LoadResult load(modhash_host *host, const std::string &dir, const std::string &name);
};

ModuleManager::ModuleManager(const std::string &libdir, const std::string &manifest,
			     const std::string &worker)
	: d_(new Private)
{
	d_->libdir = libdir;
	d_->inTree = buildHost(manifest, MODHASH_REJECT, worker, false);
	try {
		d_->extra = buildHost(manifest, MODHASH_ISOLATE, worker, true);
	} catch (...) {
		modhash_host_free(d_->inTree);
		throw;
	}
}

ModuleManager::~ModuleManager()
{
	for (auto &[instance, library] : d_->opened) {
		delete instance;
		modhash_library_close(library);
	}
	for (modhash_module *module : d_->isolated)
		modhash_module_free(module);
	modhash_host_free(d_->extra);
	modhash_host_free(d_->inTree);
}

LoadResult ModuleManager::Private::load(modhash_host *host, const std::string &dir,
					const std::string &name)
{
	LoadResult result;
	result.path = dir + "/" + name;
	const std::string path = libdir + "/host/" + result.path;

	modhash_image *image = nullptr;
	modhash_status status = modhash_host_judge(host, path.c_str(), &image);
	if (status != MODHASH_OK) {
		result.verdict = "unreadable";
		result.where = "refused";
		result.output = modhash_last_error();
		return result;
	}
	result.verdict = modhash_verdict_text(modhash_image_verdict(image));

	/* Trusted: dlopen the judged image and use the host's own interface. */
	modhash_library *library = nullptr;
	status = modhash_image_open_library(image, RTLD_NOW | RTLD_LOCAL, &library);
	modhash_image_free(image);
	if (status == MODHASH_OK) {
		const ModuleInfo *info = static_cast<const ModuleInfo *>(
			dlsym(modhash_library_handle(library), "hostModuleInfo"));
		if (!info || info->abiVersion != kModuleAbiVersion) {
			modhash_library_close(library);
			result.where = "refused";
			result.output = "no hostModuleInfo of this ABI version";
			return result;
		}
		ModuleInterface *instance = info->create();
		opened.emplace_back(instance, library);
		result.where = "in-process";
		result.output = instance->process("ping");
		return result;
	}

	/* Untrusted, and this directory's policy isolates it. */
	if (status == MODHASH_ERR_MUST_ISOLATE) {
		modhash_module *module = nullptr;
		status = modhash_host_load(host, path.c_str(), &module);
		if (status != MODHASH_OK) {
			result.where = "refused";
			result.output = modhash_last_error();
			return result;
		}
		isolated.push_back(module);
		result.where = modhash_module_is_isolated(module) ? "isolated (worker)" : "in-process";
		uint8_t *out = nullptr;
		size_t length = 0;
		static const char ping[] = "ping";
		status = modhash_module_call(module, 0, reinterpret_cast<const uint8_t *>(ping),
					     sizeof(ping) - 1, &out, &length);
		result.output = status == MODHASH_OK
					? std::string(reinterpret_cast<const char *>(out), length)
					: std::string(modhash_last_error());
		modhash_bytes_free(out, length);
		return result;
	}

	result.where = "refused";
	result.output = modhash_status_name(status);
	return result;
}

std::vector<LoadResult> ModuleManager::loadAll()
{
	std::vector<LoadResult> results;
	for (const std::string &name : modulesIn(d_->libdir + "/host/ipa"))
		results.push_back(d_->load(d_->inTree, "ipa", name));
	for (const std::string &name : modulesIn(d_->libdir + "/host/ipa-extra"))
		results.push_back(d_->load(d_->extra, "ipa-extra", name));
	return results;
}

} /* namespace host */
