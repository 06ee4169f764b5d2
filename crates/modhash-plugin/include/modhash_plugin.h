/*
 * modhash_plugin.h: the modhash module ABI, version 1.
 *
 * A module is a shared object that exports one symbol, `modhash_plugin_v1`,
 * a function returning a pointer to a static `modhash_plugin_v1_table`. The
 * symbol's name carries the ABI version, so a host never misreads a table of
 * another version; the table repeats the version and its own size so a host
 * can check both before it calls anything.
 *
 * Bytes cross the ABI in one direction each: the host passes input as a
 * pointer and length that stay valid for the duration of the call; the module
 * hands output back by calling the host's sink, which copies it. No memory is
 * ever freed across the boundary, so host and module may use different
 * allocators.
 *
 * The host never calls into one instance from two threads at once. It may
 * run several instances at once, and call `create` concurrently.
 *
 * C++ exceptions must not escape any of these functions: catch them and
 * return MODHASH_STATUS_ERROR with a message, as the Rust export! macro does
 * with panics.
 */
#ifndef MODHASH_PLUGIN_H
#define MODHASH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes. */
#define MODHASH_PLUGIN_ABI_VERSION 1u

/** The name of the one symbol a module exports. */
#define MODHASH_PLUGIN_SYMBOL "modhash_plugin_v1"

/** The call succeeded; the sink holds the output. */
#define MODHASH_STATUS_OK 0
/** The call failed; the sink holds a UTF-8 message saying why. */
#define MODHASH_STATUS_ERROR 1
/** The module caught a panic (or exception); the sink holds its message. */
#define MODHASH_STATUS_PANIC 2

/**
 * Where a module writes its output, or its error message. `write` copies
 * `len` bytes from `data` and may be called any number of times; the pieces
 * are concatenated.
 */
typedef struct modhash_sink {
    void *ctx;
    void (*write)(void *ctx, const uint8_t *data, size_t len);
} modhash_sink;

typedef struct modhash_plugin_v1_table {
    /** MODHASH_PLUGIN_ABI_VERSION. */
    uint32_t abi_version;
    /** sizeof(modhash_plugin_v1_table), so the table can grow at the end. */
    uint32_t table_size;
    /** The module's name: static, NUL-terminated UTF-8. */
    const char *name;
    /**
     * Creates an instance from `config` (may be empty; then `config` may be
     * NULL). On success stores it in `*instance` and returns
     * MODHASH_STATUS_OK; otherwise writes a message to `err`.
     */
    int32_t (*create)(const uint8_t *config, size_t config_len, void **instance,
                      modhash_sink *err);
    /**
     * Runs `method` on `input` (may be NULL when `input_len` is 0). On success
     * writes the output to `out` and returns MODHASH_STATUS_OK; on failure
     * writes a message to `out` instead and returns an error status.
     */
    int32_t (*call)(void *instance, uint32_t method, const uint8_t *input,
                    size_t input_len, modhash_sink *out);
    /** Destroys an instance made by `create`. Called exactly once. */
    void (*destroy)(void *instance);
} modhash_plugin_v1_table;

/** The one symbol a module exports. */
const modhash_plugin_v1_table *modhash_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* MODHASH_PLUGIN_H */
