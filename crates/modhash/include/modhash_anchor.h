/*
 * modhash_anchor.h: declare a modhash trust anchor in a C or C++ host.
 *
 * The record layout is documented in docs/anchor.md; this header is that
 * document in C. Declare the anchor once in the host:
 *
 *     #include <modhash_anchor.h>
 *     MODHASH_ANCHOR(host_anchor);
 *
 * then read it with modhash_anchor_read(&host_anchor, &copy) before use.
 * `modhash seal HOST --manifest M` fills the record after the modules are
 * built; unsealed, it trusts nothing.
 */
#ifndef MODHASH_ANCHOR_H
#define MODHASH_ANCHOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MODHASH_ANCHOR_LEN 64
#define MODHASH_ANCHOR_VERSION 1

enum modhash_profile {
	MODHASH_PROFILE_NONE = 0,
	MODHASH_PROFILE_FILE = 1,
	MODHASH_PROFILE_PAYLOAD = 2,
	MODHASH_PROFILE_ELF_IMAGE = 3
};

struct modhash_anchor {
	unsigned char magic[16];  /* "\x89MODHASH-ANCHOR\n" */
	unsigned char version[2]; /* little-endian, 1 */
	unsigned char profile;    /* enum modhash_profile */
	unsigned char alg;        /* 1: SHA-256 */
	unsigned char sealed;     /* 0 or 1 */
	unsigned char reserved[3];
	unsigned char count[8];   /* leaf count, little-endian */
	unsigned char root[32];   /* Merkle root, zero when unsealed */
};

/*
 * The record is exactly 64 bytes. C99 has no static assertion and C++ spells
 * it differently from C11, so the check is an array whose size would be
 * negative otherwise: it compiles the same in every language and standard.
 */
typedef char modhash_anchor_is_64_bytes
	[sizeof(struct modhash_anchor) == MODHASH_ANCHOR_LEN ? 1 : -1];

/*
 * Declares the host's one anchor, unsealed, in its own section. The
 * initialiser is positional and the magic spelled byte by byte because C++
 * before C++20 has no designated initialisers and rejects a 16-byte array
 * initialised from a 17-byte string literal.
 */
#define MODHASH_ANCHOR(name)                                               \
	__attribute__((section(".modhash_anchor"), used, aligned(8)))       \
	const struct modhash_anchor name = {                                \
		{ 0x89, 'M', 'O', 'D', 'H', 'A', 'S', 'H',                  \
		  '-', 'A', 'N', 'C', 'H', 'O', 'R', '\n' },                \
		{ MODHASH_ANCHOR_VERSION, 0 },                              \
		MODHASH_PROFILE_NONE,                                       \
		1,                                                          \
		0,                                                          \
		{ 0, 0, 0 },                                                \
		{ 0 },                                                      \
		{ 0 },                                                      \
	}

/*
 * Copies the anchor through a volatile pointer, so the compiler cannot fold
 * the placeholder it saw at build time into the code: the bytes read are the
 * sealed ones in the binary.
 */
static inline void modhash_anchor_read(const struct modhash_anchor *anchor,
				       struct modhash_anchor *out)
{
	const volatile unsigned char *src =
		(const volatile unsigned char *)anchor;
	unsigned char *dst = (unsigned char *)out;
	size_t i;
	for (i = 0; i < sizeof(*out); i++)
		dst[i] = src[i];
}

#ifdef __cplusplus
}
#endif

#endif /* MODHASH_ANCHOR_H */
