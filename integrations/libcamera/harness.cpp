/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * harness.cpp: drives libcamera's own IPA decision and load for the vimc IPA
 * module, without the vimc kernel driver.
 *
 * A CameraManager is made (not started: that would need the driver), which
 * makes libcamera's IPAManager scan the IPA module directories. The vimc
 * pipeline handler is created from its registered factory, and
 * IPAManager::createIPA() is called exactly as the pipeline handler calls it
 * when it matches a camera: IPAManager decides whether the module is trusted
 * and the proxy either loads it into this process or starts libcamera's
 * isolated proxy worker. Then the IPA's init() runs through the proxy, which
 * proves the module's code ran, here or in the worker.
 *
 * Output, one fact per line:
 *   ipa: in-process memfd|in-process file|isolated|none
 *   init: ok|failed
 *   ran: original|modified|unknown
 *   swapped: yes|no
 * "ran" is read from the module's own log line: the modified copies the
 * tests make change "initializing vimc IPA" into "Initializing vimc IPA".
 *
 * --swap-after TEXT --swap-with FILE: as soon as libcamera logs a line
 * containing TEXT (the line that reports the module trusted), rename FILE
 * over the module. This is the time-of-check/time-of-use attack: a module
 * replaced after it was judged must not be the one that runs.
 *
 * Environment: LIBCAMERA_IPA_MODULE_PATH, LIBCAMERA_IPA_PROXY_PATH,
 * LIBCAMERA_IPA_CONFIG_PATH point at the tree under test, and
 * LIBCAMERA_LOG_LEVELS must enable IPAManager, IPAModule and IPAVimc debug
 * messages (the script sets them).
 */

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <libcamera/camera_manager.h>
#include <libcamera/logging.h>

#include <libcamera/ipa/vimc_ipa_interface.h>
#include <libcamera/ipa/vimc_ipa_proxy.h>

#include "libcamera/internal/ipa_manager.h"
#include "libcamera/internal/pipeline_handler.h"

using namespace libcamera;

namespace {

/* Receives libcamera's log, keeps it, and performs the swap on cue. */
class LogTap : public std::stringbuf
{
public:
	std::string trigger;
	std::string swapWith;
	std::string target;
	bool swapped = false;

protected:
	int sync() override
	{
		if (!swapped && !trigger.empty() &&
		    str().find(trigger) != std::string::npos) {
			swapped = rename(swapWith.c_str(), target.c_str()) == 0;
			if (!swapped)
				perror("harness: rename");
		}
		std::cerr << str();
		log += str();
		str("");
		return 0;
	}

public:
	std::string log;
};

/* Where the object exporting ipaModuleInfo in this process came from. */
int findModule(struct dl_phdr_info *info, size_t, void *data)
{
	auto *where = static_cast<std::string *>(data);
	if (!info->dlpi_name || !info->dlpi_name[0])
		return 0;

	void *handle = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
	if (!handle)
		return 0;

	bool found = dlsym(handle, "ipaModuleInfo") != nullptr;
	dlclose(handle);
	if (!found)
		return 0;

	*where = strncmp(info->dlpi_name, "/proc/self/fd/", 14) == 0
			 ? "in-process memfd"
			 : "in-process file";
	return 1;
}

} /* namespace */

int main(int argc, char **argv)
{
	LogTap tap;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--swap-after"))
			tap.trigger = argv[i + 1];
		else if (!strcmp(argv[i], "--swap-with"))
			tap.swapWith = argv[i + 1];
		else {
			std::cerr << "usage: " << argv[0]
				  << " [--swap-after TEXT --swap-with FILE]" << std::endl;
			return 2;
		}
	}
	if (tap.trigger.empty() != tap.swapWith.empty()) {
		std::cerr << "harness: --swap-after and --swap-with go together" << std::endl;
		return 2;
	}

	std::ostream logStream(&tap);
	logSetStream(&logStream);

	CameraManager cm;

	std::shared_ptr<PipelineHandler> pipe;
	for (PipelineHandlerFactoryBase *factory : PipelineHandlerFactoryBase::factories()) {
		if (factory->name() == "PipelineHandlerVimc")
			pipe = factory->create(&cm);
	}
	if (!pipe) {
		std::cerr << "harness: no vimc pipeline handler in this libcamera" << std::endl;
		return 2;
	}

	const char *dir = getenv("LIBCAMERA_IPA_MODULE_PATH");
	tap.target = std::string(dir ? dir : "") + "/ipa_vimc.so";

	std::unique_ptr<ipa::vimc::IPAProxyVimc> ipa =
		IPAManager::createIPA<ipa::vimc::IPAProxyVimc>(pipe.get(), 0, 0);

	std::string where = "none";
	bool initOk = false;
	if (ipa) {
		where = "isolated";
		dl_iterate_phdr(findModule, &where);

		Flags<ipa::vimc::TestFlag> outFlags;
		int ret = ipa->init(IPASettings{ ipa->configurationFile("vimc.conf"), "vimc" },
				    ipa::vimc::IPAOperationInit, {}, &outFlags);
		initOk = ret == 0 && (outFlags & ipa::vimc::TestFlag::Flag1);
	}
	logStream.flush();

	const char *ran = "unknown";
	if (tap.log.find("Initializing vimc IPA") != std::string::npos)
		ran = "modified";
	else if (tap.log.find("initializing vimc IPA") != std::string::npos)
		ran = "original";

	std::cout << "ipa: " << where << "\n"
		  << "init: " << (initOk ? "ok" : "failed") << "\n"
		  << "ran: " << ran << "\n"
		  << "swapped: " << (tap.swapped ? "yes" : "no") << std::endl;

	ipa.reset();
	pipe.reset();
	return 0;
}
