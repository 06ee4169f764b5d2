/*
 * Every public header in one translation unit that is both C and C++:
 * tests/headers.rs compiles it as C99 (gcc, clang) and as C++11, C++17 and
 * C++20 (g++, clang++) with warnings as errors, then runs it. It prints the
 * anchor record MODHASH_ANCHOR declared, as the compiler laid it out, and
 * the test compares it with the record the Rust side defines.
 */
#include <modhash.h>
#include <modhash_anchor.h>
#include <modhash_plugin.h>

#include <stdio.h>

MODHASH_ANCHOR(host_anchor);

int main(void)
{
	struct modhash_anchor copy;
	size_t i;
	const unsigned char *bytes = (const unsigned char *)&copy;

	modhash_anchor_read(&host_anchor, &copy);
	for (i = 0; i < sizeof copy; i++)
		printf("%02x", bytes[i]);
	printf("\n%d %d %d\n", (int)MODHASH_OK, (int)MODHASH_UNTRUSTED, (int)MODHASH_PLUGIN_ABI_VERSION);
	return 0;
}
