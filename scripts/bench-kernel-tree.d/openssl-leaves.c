/*
 * The baseline of scripts/bench-kernel-tree: one single-threaded pass over
 * the modules a modules.order lists, as the kernel build's own tool reads
 * them: each file mapped and hashed with OpenSSL's SHA-256 as a module hash
 * leaf (0x01, big-endian position, the bytes), then the tree built over the
 * leaves. Prints levels=N root=<hex>, so the benchmark can check it gives
 * modhash's answer.
 *
 * Usage: openssl-leaves DIR  (reads DIR/modules.order; lines dir/name.o)
 */
#include <arpa/inet.h>
#include <err.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

typedef unsigned char hash_t[32];

static void leaf(EVP_MD_CTX *ctx, const char *path, unsigned int pos, unsigned char *out)
{
	unsigned char magic = 0x01;
	unsigned int pos_be = htonl(pos);
	struct stat st;
	void *mem;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		err(1, "%s", path);
	mem = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED)
		err(1, "mmap %s", path);
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, &magic, 1) ||
	    !EVP_DigestUpdate(ctx, &pos_be, 4) ||
	    !EVP_DigestUpdate(ctx, mem, st.st_size) ||
	    !EVP_DigestFinal_ex(ctx, out, NULL))
		errx(1, "sha256 %s", path);
	munmap(mem, st.st_size);
	close(fd);
}

static void node(EVP_MD_CTX *ctx, const unsigned char *l, const unsigned char *r, unsigned char *out)
{
	unsigned char magic = 0x02;

	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, &magic, 1) ||
	    !EVP_DigestUpdate(ctx, l, 32) ||
	    !EVP_DigestUpdate(ctx, r, 32) ||
	    !EVP_DigestFinal_ex(ctx, out, NULL))
		errx(1, "sha256 node");
}

int main(int argc, char **argv)
{
	char line[4096], path[8192];
	hash_t *level = NULL;
	size_t n = 0, cap = 0;
	unsigned int levels = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *order;

	if (argc != 2)
		errx(2, "usage: %s DIR", argv[0]);
	snprintf(path, sizeof(path), "%s/modules.order", argv[1]);
	order = fopen(path, "r");
	if (!order || !ctx)
		err(1, "%s", path);
	while (fgets(line, sizeof(line), order)) {
		size_t len = strcspn(line, "\n");

		if (len < 2 || strncmp(line + len - 2, ".o", 2))
			errx(1, "bad line %s", line);
		line[len - 2] = 0;
		snprintf(path, sizeof(path), "%s/%s.ko", argv[1], line);
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			level = realloc(level, cap * sizeof(*level));
			if (!level)
				err(1, "realloc");
		}
		leaf(ctx, path, n, level[n]);
		n++;
	}
	if (n == 0)
		errx(1, "no modules");
	for (size_t width = n; width > 1 || levels == 0; width = (width + 1) / 2, levels++) {
		for (size_t i = 0; i < width; i += 2)
			node(ctx, level[i], level[i + 1 < width ? i + 1 : i], level[i / 2]);
	}
	printf("levels=%u root=", levels);
	for (int i = 0; i < 32; i++)
		printf("%02x", level[0][i]);
	printf("\n");
	return 0;
}
