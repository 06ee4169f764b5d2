/*
 * modhash.h: verify and load modules from a C or C++ host.
 *
 * libmodhash is the C face of the Rust `modhash` host API. A host builds one
 * policy at start-up from its own trust anchor (declared with
 * modhash_anchor.h and sealed by `modhash seal` after the modules are built),
 * the manifest shipped beside the modules, the keys it trusts for
 * out-of-tree modules, and what to do with a module trusted neither way.
 * Then, per module, it either
 *   - verifies it (modhash_host_verify): a verdict, nothing loaded;
 *   - judges it (modhash_host_judge) and opens the judged image with dlopen
 *     (modhash_image_open_library), for hosts with a module interface of
 *     their own that look up their symbols with dlsym; or
 *   - loads it (modhash_host_load) as a modhash module (modhash_plugin.h)
 *     and calls it (modhash_module_call), in-process or in a sandboxed
 *     worker process, as the policy says.
 * A module file is opened and read once, into a sealed memfd; what is hashed
 * is what is mapped, so replacing the file after the check changes nothing.
 *
 * Conventions, for every function below:
 *   - Functions that can fail return a modhash_status. On failure the
 *     out-pointer is left untouched (set to NULL where the function says so)
 *     and modhash_last_error() holds one line naming the file and the reason.
 *   - Every pointer argument is checked: NULL where an object is required
 *     gives MODHASH_ERR_NULL, never a crash. The *_free and *_close
 *     functions accept NULL and do nothing.
 *   - No Rust panic crosses this interface: an internal bug is reported as
 *     MODHASH_ERR_PANIC with its message (the process keeps running).
 *   - Strings are NUL-terminated UTF-8, returned as `const char *` owned by
 *     the object they were read from, valid until that object is freed.
 *   - Paths are byte strings, as the kernel sees them; they need not be
 *     UTF-8.
 *   - Objects are created by one function and freed by exactly one
 *     (named in its comment); using an object after freeing it, or freeing
 *     it twice, is undefined behaviour, as with free(3).
 *
 * Thread-safety: a modhash_host is immutable once built and may be used from
 * any number of threads at once; so may verdicts, images' verdicts, modules
 * (calls into one module are serialised inside it) and libraries. A builder
 * and an image are used by one thread at a time. modhash_last_error() is
 * per thread.
 */
#ifndef MODHASH_H
#define MODHASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of libmodhash this header describes. */
#define MODHASH_VERSION_MAJOR 0
#define MODHASH_VERSION_MINOR 1
#define MODHASH_VERSION_PATCH 0

/** A policy being built; consumed by modhash_host_build. */
typedef struct modhash_host_builder modhash_host_builder;
/** A host's policy and loader: immutable and thread-safe once built. */
typedef struct modhash_host modhash_host;
/** The verdict on one module: trusted by hash, by signature, or untrusted. */
typedef struct modhash_verdict modhash_verdict;
/** A judged, sealed snapshot of one module file: its verdict and the image
 *  that would be mapped. No code of the module has run. */
typedef struct modhash_image modhash_image;
/** A dlopen handle of a judged image; it keeps the image's memfd open. */
typedef struct modhash_library modhash_library;
/** A loaded modhash module (modhash_plugin.h), in-process or isolated. */
typedef struct modhash_module modhash_module;

/** What a function returned. Values never change meaning; new ones may be
 *  added, so a `switch` needs a default. */
typedef enum modhash_status {
    /** Success. */
    MODHASH_OK = 0,
    /** A required pointer argument was NULL. */
    MODHASH_ERR_NULL = 1,
    /** An argument is out of range (an unknown enum value, an index past
     *  the end), or the object was already used up (an image opened
     *  twice). */
    MODHASH_ERR_ARGUMENT = 2,
    /** A file could not be read (missing, unreadable, not a regular file,
     *  larger than the size cap). The message names the file. */
    MODHASH_ERR_IO = 3,
    /** The manifest is malformed, or its root is not the host's anchor
     *  root (stale manifest: re-run `modhash manifest` and `modhash seal`). */
    MODHASH_ERR_MANIFEST = 4,
    /** The host's anchor is unsealed or malformed: run
     *  `modhash seal HOST --manifest M` after the modules are built, or call
     *  modhash_host_builder_allow_unsealed() for development builds. */
    MODHASH_ERR_UNSEALED = 5,
    /** The anchor record passed to modhash_host_builder_new is not a
     *  modhash anchor (wrong length, magic or version). */
    MODHASH_ERR_ANCHOR = 6,
    /** A key could not be read or parsed. */
    MODHASH_ERR_KEY = 7,
    /** The module is not an ELF file the policy's profile can hash
     *  (not ELF, truncated, hostile headers, a kernel .ko for elf-image). */
    MODHASH_ERR_NOT_ELF = 8,
    /** The module is untrusted and the policy rejects untrusted modules.
     *  The verdict says why. */
    MODHASH_ERR_REJECTED = 9,
    /** The module is untrusted and the policy isolates untrusted modules
     *  (or MODHASH_FORCE_ISOLATION is set), so it may not be opened
     *  in-process with dlopen: load it with modhash_host_load instead. */
    MODHASH_ERR_MUST_ISOLATE = 10,
    /** dlopen failed, or the module's ABI table or create() failed. */
    MODHASH_ERR_LOAD = 11,
    /** The module's call returned an error (the message is the module's). */
    MODHASH_ERR_CALL = 12,
    /** The isolated worker could not start, crashed, hung or hit a sandbox
     *  limit. The host is unaffected. */
    MODHASH_ERR_WORKER = 13,
    /** An internal bug was caught at the interface; the message says where.
     *  Please report it. */
    MODHASH_ERR_PANIC = 14,
    /** The module itself is trusted, but a library it needs (DT_NEEDED)
     *  is neither loaded, nor a trusted module, nor a system library, and
     *  the policy rejects untrusted modules; or, with MODHASH_TAINT, a
     *  needed library cannot be pinned to judged bytes. The message names
     *  the library. */
    MODHASH_ERR_DEPENDENCY = 15
} modhash_status;

/** How a module is trusted. */
typedef enum modhash_trust {
    /** Its digest is in the manifest whose root is sealed in the host. */
    MODHASH_TRUSTED_BY_HASH = 1,
    /** It carries a valid signature by a key the host trusts. */
    MODHASH_TRUSTED_BY_SIGNATURE = 2,
    /** Neither; the verdict's reasons say why. */
    MODHASH_UNTRUSTED = 3
} modhash_trust;

/** What happens to a module that is not trusted. */
typedef enum modhash_untrusted_action {
    /** Refuse it (the default). */
    MODHASH_REJECT = 0,
    /** Run it in a sandboxed worker process. */
    MODHASH_ISOLATE = 1,
    /** Load it in-process anyway, log it and list it in the taint list. */
    MODHASH_TAINT = 2
} modhash_untrusted_action;

/* ---- Errors ----------------------------------------------------------- */

/**
 * The message of the last failure on this thread: one line,
 * "<file>: <reason>" when a file is involved. Never NULL ("" when nothing
 * failed yet). Valid until the next libmodhash call on this thread.
 */
const char *modhash_last_error(void);

/** The name of a status, e.g. "MODHASH_ERR_IO"; static, never NULL. */
const char *modhash_status_name(modhash_status status);

/** The library's version, "MAJOR.MINOR.PATCH"; static. */
const char *modhash_version(void);

/* ---- Building a host ---------------------------------------------------- */

/**
 * Starts a host policy from the host's own anchor record: pass
 * `&host_anchor, sizeof host_anchor` for the record declared with
 * MODHASH_ANCHOR(host_anchor). The record is read once, here, through a
 * volatile copy. On success `*out` is a new builder, to be consumed by
 * modhash_host_build (or freed with modhash_host_builder_free).
 * MODHASH_ERR_ANCHOR if the record is not a modhash anchor.
 */
modhash_status modhash_host_builder_new(const void *anchor_record, size_t len,
                                        modhash_host_builder **out);

/**
 * The manifest listing the in-tree modules' digests, as written by
 * `modhash manifest`. Read when modhash_host_build runs; its root must be
 * the anchor's (else modhash_host_build fails with MODHASH_ERR_MANIFEST).
 * The manifest needs no protection: it can add no trust the anchor does not
 * already give.
 */
modhash_status modhash_host_builder_manifest_file(modhash_host_builder *builder,
                                                  const char *path);

/**
 * Trusts signatures by the key in this file: an OpenSSH Ed25519 public key
 * (`modhash keygen`), or an X.509 certificate (PEM or DER) for kernel-style
 * appended signatures. May be called several times. Read when
 * modhash_host_build runs (MODHASH_ERR_KEY or MODHASH_ERR_IO then).
 * The file should be as well protected as the host binary: better compile
 * the key in and use modhash_host_builder_key.
 */
modhash_status modhash_host_builder_key_file(modhash_host_builder *builder,
                                             const char *path);

/**
 * Trusts signatures by a key given as bytes compiled into the host, in any
 * of the formats modhash_host_builder_key_file reads. The bytes are copied.
 */
modhash_status modhash_host_builder_key(modhash_host_builder *builder,
                                        const uint8_t *key, size_t len);

/**
 * Trusts libcamera-style `<module>.sign` files (RSA PKCS#1 v1.5 over
 * SHA-256 of the whole module file) made with this RSA key, given as a DER
 * SubjectPublicKeyInfo, as libcamera compiles it into libcamera.so. The
 * bytes are copied. MODHASH_ERR_KEY if they are not an RSA public key.
 */
modhash_status modhash_host_builder_libcamera_key(modhash_host_builder *builder,
                                                  const uint8_t *spki_der,
                                                  size_t len);

/**
 * Also looks for native signatures in this directory (`modhash sign
 * --signtab DIR`), keyed by the module's digest, besides the sidecar next
 * to each module.
 */
modhash_status modhash_host_builder_signtab(modhash_host_builder *builder,
                                            const char *dir);

/** What happens to modules trusted neither by hash nor by signature
 *  (default MODHASH_REJECT). MODHASH_ERR_ARGUMENT for an unknown value. */
modhash_status modhash_host_builder_untrusted(modhash_host_builder *builder,
                                              modhash_untrusted_action action);

/**
 * The isolated worker executable (`modhash-worker`). Default: the file of
 * that name next to the host's executable. When the policy can isolate,
 * modhash_host_build checks it exists (MODHASH_ERR_WORKER otherwise).
 */
modhash_status modhash_host_builder_worker(modhash_host_builder *builder,
                                           const char *path);

/**
 * Accepts an unsealed anchor (development builds): nothing is then trusted
 * by hash, and every verdict says "host unsealed". Without this call, an
 * unsealed anchor makes modhash_host_build fail with MODHASH_ERR_UNSEALED.
 */
modhash_status modhash_host_builder_allow_unsealed(modhash_host_builder *builder);

/**
 * Builds the host. `builder` is consumed whatever the result: do not use or
 * free it afterwards. Reads the manifest and keys, checks the manifest's
 * root against the anchor and the worker's presence; fails fast, naming
 * the file. On success `*out` is a host to free with modhash_host_free
 * after every image, library and module made from it is gone.
 */
modhash_status modhash_host_build(modhash_host_builder *builder, modhash_host **out);

/** Frees a builder that was never built. */
void modhash_host_builder_free(modhash_host_builder *builder);

/** Frees a host. */
void modhash_host_free(modhash_host *host);

/* ---- Verdicts ----------------------------------------------------------- */

/**
 * The verdict on the module at `path`: read once, hashed, judged; nothing
 * is loaded and no policy action applies. An unreadable or non-ELF module
 * is an error (MODHASH_ERR_IO, MODHASH_ERR_NOT_ELF), not a verdict. Free
 * the verdict with modhash_verdict_free.
 */
modhash_status modhash_host_verify(const modhash_host *host, const char *path,
                                   modhash_verdict **out);

/**
 * As modhash_host_verify, for a module already open as `fd`: the file is
 * read whole through /proc/self/fd, which reaches the file the fd refers
 * to whatever its path is now; the fd's offset is not changed and it is not
 * closed. `name` is the module's path, for messages and for finding
 * sidecar signatures next to it; it may be NULL (then no sidecar is
 * found, and messages say "fd N").
 */
modhash_status modhash_host_verify_fd(const modhash_host *host, int fd, const char *name,
                                      modhash_verdict **out);

/** How the module is trusted. MODHASH_UNTRUSTED for a NULL verdict. */
modhash_trust modhash_verdict_trust(const modhash_verdict *verdict);

/** The verdict as the CLI prints it: "trusted-by-hash",
 *  "trusted-by-signature <key>" or "untrusted: <reason>; <reason>".
 *  NULL for a NULL verdict. */
const char *modhash_verdict_text(const modhash_verdict *verdict);

/** The key that signed the module; NULL unless trusted by signature. */
const char *modhash_verdict_signer(const modhash_verdict *verdict);

/** How many reasons an untrusted verdict has (0 when trusted). */
size_t modhash_verdict_reason_count(const modhash_verdict *verdict);

/** Reason `i` (from 0) of an untrusted verdict, one line; NULL when out of
 *  range. */
const char *modhash_verdict_reason(const modhash_verdict *verdict, size_t i);

/** The SHA-256 digest of the judged image, as 64 lowercase hex digits. */
const char *modhash_verdict_digest(const modhash_verdict *verdict);

/** Frees a verdict from modhash_host_verify or modhash_host_verify_fd. */
void modhash_verdict_free(modhash_verdict *verdict);

/* ---- Judged images and dlopen ------------------------------------------ */

/**
 * Reads the module at `path` once into a sealed memfd, hashes it and
 * judges it. Runs no code of the module. On success `*out` is an image to
 * free with modhash_image_free; its verdict decides what
 * modhash_image_open_library will do.
 */
modhash_status modhash_host_judge(const modhash_host *host, const char *path,
                                  modhash_image **out);

/** The image's verdict, owned by the image. NULL for a NULL image. */
const modhash_verdict *modhash_image_verdict(const modhash_image *image);

/**
 * Applies the host's policy to the image and, if it may run in-process,
 * dlopens exactly the sealed bytes that were judged, with `dlopen_flags`
 * (RTLD_NOW | RTLD_LOCAL is usual; 0 means that). Trusted: opened.
 * Untrusted with MODHASH_REJECT: MODHASH_ERR_REJECTED; with
 * MODHASH_ISOLATE (or MODHASH_FORCE_ISOLATION set): MODHASH_ERR_MUST_ISOLATE,
 * since a dlopen handle cannot be isolated; with MODHASH_TAINT: recorded in
 * the host's taint list, then opened. The image can be opened once; a
 * second call gives MODHASH_ERR_ARGUMENT. The image may be freed before or
 * after the library. On success `*out` is to be closed with
 * modhash_library_close.
 */
modhash_status modhash_image_open_library(modhash_image *image, int dlopen_flags,
                                          modhash_library **out);

/** Frees an image (its memfd too, unless a library holds it). */
void modhash_image_free(modhash_image *image);

/** The dlopen handle, for dlsym. Valid until modhash_library_close; never
 *  pass it to dlclose. NULL for a NULL library. */
void *modhash_library_handle(const modhash_library *library);

/** The library's verdict, owned by the library. */
const modhash_verdict *modhash_library_verdict(const modhash_library *library);

/** dlcloses the library and closes its memfd. Every pointer obtained with
 *  dlsym from it becomes invalid. */
void modhash_library_close(modhash_library *library);

/* ---- Modules ------------------------------------------------------------ */

/**
 * Loads the modhash module (modhash_plugin.h) at `path`: read once into a
 * sealed memfd, judged, then, as the policy says, opened in-process,
 * handed to a sandboxed worker process, or refused (MODHASH_ERR_REJECTED;
 * the verdict is in the message). Free the module with modhash_module_free.
 */
modhash_status modhash_host_load(const modhash_host *host, const char *path,
                                 modhash_module **out);

/**
 * Calls `method` with `in_len` bytes at `in` (`in` may be NULL when
 * `in_len` is 0). On success `*out`/`*out_len` receive the output,
 * allocated by libmodhash and freed with modhash_bytes_free (`*out` is NULL
 * when the output is empty). On MODHASH_ERR_CALL (the module said no) or
 * MODHASH_ERR_WORKER (the worker died or hit a limit), `*out` is NULL,
 * `*out_len` is 0 and modhash_last_error() says why.
 */
modhash_status modhash_module_call(const modhash_module *module, uint32_t method,
                                   const uint8_t *in, size_t in_len, uint8_t **out,
                                   size_t *out_len);

/** Frees output from modhash_module_call; `len` is the length it gave. */
void modhash_bytes_free(uint8_t *bytes, size_t len);

/** 1 if the module runs in a worker process, 0 if in-process or NULL. */
int modhash_module_is_isolated(const modhash_module *module);

/** The name the module reports; owned by the module. */
const char *modhash_module_name(const modhash_module *module);

/** The module's verdict, owned by the module. */
const modhash_verdict *modhash_module_verdict(const modhash_module *module);

/** Destroys the module's instance and unloads it (or stops its worker). */
void modhash_module_free(modhash_module *module);

/* ---- Taint list --------------------------------------------------------- */

/** How many untrusted modules were loaded in-process under MODHASH_TAINT
 *  so far (by modhash_host_load or modhash_image_open_library). */
size_t modhash_host_tainted_count(const modhash_host *host);

/** The path of tainted entry `i` (oldest first); NULL when out of range.
 *  Entries are never removed: valid until modhash_host_free. */
const char *modhash_host_tainted_path(const modhash_host *host, size_t i);

/** The verdict of tainted entry `i`; NULL when out of range. Valid until
 *  modhash_host_free. */
const modhash_verdict *modhash_host_tainted_verdict(const modhash_host *host, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* MODHASH_H */
