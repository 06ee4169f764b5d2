/*
 * Prints the version of libmodhash it runs with, then loads every module
 * of an installed tree through libhost and prints one line per module: its path, modhash's verdict, where it ran, and its
 * answer (or why it was refused).
 *
 * Usage: host-test LIBDIR MANIFEST WORKER
 */
#include <cstdio>
#include <exception>

#include <host/module_manager.h>
#include <modhash.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		std::fprintf(stderr, "usage: host-test LIBDIR MANIFEST WORKER\n");
		return 2;
	}
	std::printf("libmodhash %s\n", modhash_version());
	try {
		host::ModuleManager manager(argv[1], argv[2], argv[3]);
		for (const host::LoadResult &r : manager.loadAll())
			std::printf("%s: %s; %s; %s\n", r.path.c_str(), r.verdict.c_str(),
				    r.where.c_str(), r.output.c_str());
	} catch (const std::exception &e) {
		std::fprintf(stderr, "host-test: %s\n", e.what());
		return 1;
	}
	return 0;
}
