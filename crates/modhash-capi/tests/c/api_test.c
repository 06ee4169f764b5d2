/*
 * Drives libmodhash from C the way a host would, good and bad input alike,
 * and prints one line per step: the step, the status name, and the verdict
 * or the message. tests/c_api.rs runs it in a directory it prepared and
 * compares the output with api_test.expected.
 *
 * Usage: api_test SEALED-RECORD-FILE
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dlfcn.h>

#include <modhash.h>
#include <modhash_anchor.h>
#include <modhash_plugin.h>

/* This program's own anchor, never sealed: it must be refused. */
MODHASH_ANCHOR(unsealed_anchor);

static unsigned char sealed[MODHASH_ANCHOR_LEN];

static void report(const char *step, modhash_status status)
{
	printf("%s: %s", step, modhash_status_name((int)status));
	if (status != MODHASH_OK)
		printf(": %s", modhash_last_error());
	printf("\n");
}

static void print_verdict(const char *step, const modhash_verdict *v)
{
	size_t i;
	printf("%s: trust=%d text=%s signer=%s reasons=%zu", step,
	       (int)modhash_verdict_trust(v), modhash_verdict_text(v),
	       modhash_verdict_signer(v) ? modhash_verdict_signer(v) : "(none)",
	       modhash_verdict_reason_count(v));
	for (i = 0; i < modhash_verdict_reason_count(v); i++)
		printf(" [%s]", modhash_verdict_reason(v, i));
	printf("\n");
}

/* A host from the sealed record, `manifest` and `action`; NULL on failure. */
static modhash_host *host_with(const char *step, const void *record,
			       const char *manifest, modhash_untrusted_action action,
			       const char *worker)
{
	modhash_host_builder *b = NULL;
	modhash_host *host = NULL;
	modhash_status s = modhash_host_builder_new(record, MODHASH_ANCHOR_LEN, &b);
	if (s != MODHASH_OK) {
		report(step, s);
		return NULL;
	}
	if (manifest)
		modhash_host_builder_manifest_file(b, manifest);
	modhash_host_builder_untrusted(b, action);
	if (worker)
		modhash_host_builder_worker(b, worker);
	s = modhash_host_build(b, &host);
	report(step, s);
	return host;
}

static void read_record(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f || fread(sealed, 1, sizeof sealed, f) != sizeof sealed) {
		fprintf(stderr, "api_test: %s: cannot read the sealed record\n", path);
		exit(2);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	modhash_host_builder *b = NULL;
	modhash_host *host = NULL;
	modhash_verdict *v = NULL;
	modhash_image *image = NULL;
	modhash_library *lib = NULL;
	modhash_module *m = NULL;
	uint8_t *out = NULL;
	size_t out_len = 0;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: api_test SEALED-RECORD-FILE\n");
		return 2;
	}
	read_record(argv[1]);
	printf("version: %s\n", modhash_version());
	printf("unknown status: %s\n", modhash_status_name(99));
	/* The header's numbers and the library's names agree. */
#define NAME(status) printf("%d %s %s\n", (int)status, #status, modhash_status_name(status))
	NAME(MODHASH_OK);
	NAME(MODHASH_ERR_NULL);
	NAME(MODHASH_ERR_ARGUMENT);
	NAME(MODHASH_ERR_IO);
	NAME(MODHASH_ERR_MANIFEST);
	NAME(MODHASH_ERR_UNSEALED);
	NAME(MODHASH_ERR_ANCHOR);
	NAME(MODHASH_ERR_KEY);
	NAME(MODHASH_ERR_NOT_ELF);
	NAME(MODHASH_ERR_REJECTED);
	NAME(MODHASH_ERR_MUST_ISOLATE);
	NAME(MODHASH_ERR_LOAD);
	NAME(MODHASH_ERR_CALL);
	NAME(MODHASH_ERR_WORKER);
	NAME(MODHASH_ERR_PANIC);
	NAME(MODHASH_ERR_DEPENDENCY);
#undef NAME

	/* Null pointers, everywhere they can be passed. */
	report("builder_new(NULL record)", modhash_host_builder_new(NULL, 64, &b));
	report("builder_new(NULL out)", modhash_host_builder_new(sealed, 64, NULL));
	report("manifest_file(NULL builder)", modhash_host_builder_manifest_file(NULL, "m"));
	report("build(NULL builder)", modhash_host_build(NULL, &host));
	report("verify(NULL host)", modhash_host_verify(NULL, "x", &v));
	report("judge(NULL host)", modhash_host_judge(NULL, "x", &image));
	report("load(NULL host)", modhash_host_load(NULL, "x", &m));
	report("call(NULL module)", modhash_module_call(NULL, 0, NULL, 0, &out, &out_len));
	report("open_library(NULL image)", modhash_image_open_library(NULL, 0, &lib));
	printf("getters on NULL: %d %p %p %zu %p %p %d %zu\n", (int)modhash_verdict_trust(NULL),
	       (const void *)modhash_verdict_text(NULL), (const void *)modhash_image_verdict(NULL),
	       modhash_verdict_reason_count(NULL), modhash_library_handle(NULL),
	       (const void *)modhash_module_name(NULL), modhash_module_is_isolated(NULL),
	       modhash_host_tainted_count(NULL));
	modhash_host_free(NULL);
	modhash_verdict_free(NULL);
	modhash_image_free(NULL);
	modhash_library_close(NULL);
	modhash_module_free(NULL);
	modhash_bytes_free(NULL, 0);
	modhash_host_builder_free(NULL);

	/* Bad anchors and bad configuration. */
	report("builder_new(short record)", modhash_host_builder_new(sealed, 10, &b));
	report("builder_new(SIZE_MAX length)", modhash_host_builder_new(sealed, SIZE_MAX, &b));
	report("builder_new(not an anchor)", modhash_host_builder_new("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 64, &b));
	host_with("build(unsealed host)", &unsealed_anchor, "manifest", MODHASH_REJECT, NULL);
	host_with("build(missing manifest)", sealed, "no-such.manifest", MODHASH_REJECT, NULL);
	host_with("build(manifest of other modules)", sealed, "wrong.manifest", MODHASH_REJECT, NULL);
	host_with("build(garbage manifest)", sealed, "notelf.so", MODHASH_REJECT, NULL);
	host_with("build(isolate, no worker)", sealed, "manifest", MODHASH_ISOLATE, "no-such-worker");
	modhash_host_builder_new(sealed, 64, &b);
	report("untrusted(7)", modhash_host_builder_untrusted(b, (modhash_untrusted_action)7));
	report("key_file(missing)", modhash_host_builder_key_file(b, "no-such.pub"));
	report("build(missing key)", modhash_host_build(b, &host));
	modhash_host_builder_new(sealed, 64, &b);
	report("key(garbage)", modhash_host_builder_key(b, (const uint8_t *)"garbage", 7));
	report("libcamera_key(garbage)", modhash_host_builder_libcamera_key(b, (const uint8_t *)"garbage", 7));
	report("allow_unsealed", modhash_host_builder_allow_unsealed(b));
	modhash_host_builder_free(b);

	/* An unsealed host allowed for development trusts nothing by hash. */
	modhash_host_builder_new(&unsealed_anchor, sizeof unsealed_anchor, &b);
	modhash_host_builder_allow_unsealed(b);
	report("build(unsealed, allowed)", modhash_host_build(b, &host));
	report("verify(unsealed host)", modhash_host_verify(host, "mods/libupper.so", &v));
	print_verdict("verdict(unsealed host)", v);
	modhash_verdict_free(v);
	modhash_host_free(host);

	/* The sealed host, rejecting untrusted modules. */
	host = host_with("build(sealed)", sealed, "manifest", MODHASH_REJECT, NULL);
	report("verify(missing file)", modhash_host_verify(host, "mods/no-such.so", &v));
	report("verify(directory)", modhash_host_verify(host, "mods", &v));
	report("verify(not ELF)", modhash_host_verify(host, "notelf.so", &v));
	report("load(not ELF)", modhash_host_load(host, "notelf.so", &m));
	report("verify(NULL path)", modhash_host_verify(host, NULL, &v));
	report("verify(NULL out)", modhash_host_verify(host, "mods/libupper.so", NULL));
	report("verify(in-tree)", modhash_host_verify(host, "mods/libupper.so", &v));
	print_verdict("verdict(in-tree)", v);
	modhash_verdict_free(v);
	fd = open("tampered/libupper.so", O_RDONLY | O_CLOEXEC);
	report("verify_fd(tampered)", modhash_host_verify_fd(host, fd, "tampered/libupper.so", &v));
	print_verdict("verdict(tampered)", v);
	printf("fd offset after verify_fd: %ld\n", (long)lseek(fd, 0, SEEK_CUR));
	close(fd);
	modhash_verdict_free(v);
	report("verify_fd(-1)", modhash_host_verify_fd(host, -1, NULL, &v));

	/* Load and call the trusted module in-process. */
	report("load(in-tree)", modhash_host_load(host, "mods/libupper.so", &m));
	printf("module: name=%s isolated=%d\n", modhash_module_name(m), modhash_module_is_isolated(m));
	print_verdict("verdict(module)", modhash_module_verdict(m));
	report("call(0)", modhash_module_call(m, 0, (const uint8_t *)"hello", 5, &out, &out_len));
	printf("output: %.*s\n", (int)out_len, (const char *)out);
	modhash_bytes_free(out, out_len);
	report("call(1)", modhash_module_call(m, 1, NULL, 0, &out, &out_len));
	printf("output after failure: %p %zu\n", (void *)out, out_len);
	report("call(NULL input, length 3)", modhash_module_call(m, 0, NULL, 3, &out, &out_len));
	modhash_module_free(m);
	report("load(tampered)", modhash_host_load(host, "tampered/libupper.so", &m));
	report("load(trusted, needs an unlisted library)", modhash_host_load(host, "mods/libneedy.so", &m));

	/* Judge, then dlopen the judged image. */
	report("judge(in-tree)", modhash_host_judge(host, "mods/libupper.so", &image));
	print_verdict("verdict(image)", modhash_image_verdict(image));
	report("open_library", modhash_image_open_library(image, RTLD_NOW | RTLD_LOCAL, &lib));
	report("open_library(again)", modhash_image_open_library(image, 0, &lib));
	modhash_image_free(image);
	{
		const modhash_plugin_v1_table *(*entry)(void);
		/* POSIX's way to take a function from dlsym in ISO C. */
		*(void **)(&entry) = dlsym(modhash_library_handle(lib), MODHASH_PLUGIN_SYMBOL);
		printf("dlsym: %s, module name %s\n", entry ? "found" : "missing", entry ? entry()->name : "-");
	}
	print_verdict("verdict(library)", modhash_library_verdict(lib));
	modhash_library_close(lib);
	report("judge(tampered)", modhash_host_judge(host, "tampered/libupper.so", &image));
	report("open_library(tampered, reject)", modhash_image_open_library(image, 0, &lib));
	modhash_image_free(image);
	modhash_host_free(host);

	/* Taint: loaded and listed. */
	host = host_with("build(taint)", sealed, "manifest", MODHASH_TAINT, NULL);
	report("judge(tampered)", modhash_host_judge(host, "tampered/libupper.so", &image));
	report("open_library(tampered, taint)", modhash_image_open_library(image, 0, &lib));
	modhash_image_free(image);
	modhash_library_close(lib);
	report("load(tampered, taint)", modhash_host_load(host, "tampered/libupper.so", &m));
	modhash_module_free(m);
	printf("tainted: %zu\n", modhash_host_tainted_count(host));
	printf("tainted[0]: %s\n", modhash_host_tainted_path(host, 0));
	print_verdict("tainted[1]", modhash_host_tainted_verdict(host, 1));
	printf("tainted[2]: %p\n", (const void *)modhash_host_tainted_path(host, 2));
	modhash_host_free(host);

	/* Isolate: a dlopen handle cannot be isolated. */
	host = host_with("build(isolate)", sealed, "manifest", MODHASH_ISOLATE, "/bin/true");
	report("judge(tampered)", modhash_host_judge(host, "tampered/libupper.so", &image));
	report("open_library(tampered, isolate)", modhash_image_open_library(image, 0, &lib));
	modhash_image_free(image);
	modhash_host_free(host);
	return 0;
}
