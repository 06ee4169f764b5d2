/*
 * An example modhash module written in C.
 *
 * Method 0 returns its input in upper case, prefixed by the configuration
 * bytes given at create time. Any other method is an error.
 *
 * Build: cc -shared -fPIC -O2 -I ../../crates/modhash-plugin/include \
 *           -o libupper.so upper.c
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "modhash_plugin.h"

struct upper {
    size_t prefix_len;
    uint8_t prefix[];
};

static void say(modhash_sink *sink, const char *message)
{
    sink->write(sink->ctx, (const uint8_t *)message, strlen(message));
}

static int32_t upper_create(const uint8_t *config, size_t config_len,
                            void **instance, modhash_sink *err)
{
    struct upper *self = malloc(sizeof *self + config_len);
    if (self == NULL) {
        say(err, "out of memory");
        return MODHASH_STATUS_ERROR;
    }
    self->prefix_len = config_len;
    if (config_len > 0)
        memcpy(self->prefix, config, config_len);
    *instance = self;
    return MODHASH_STATUS_OK;
}

static int32_t upper_call(void *instance, uint32_t method, const uint8_t *input,
                          size_t input_len, modhash_sink *out)
{
    const struct upper *self = instance;
    uint8_t chunk[256];

    if (method != 0) {
        say(out, "unknown method; this module has only method 0 (upper case)");
        return MODHASH_STATUS_ERROR;
    }
    out->write(out->ctx, self->prefix, self->prefix_len);
    while (input_len > 0) {
        size_t n = input_len < sizeof chunk ? input_len : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = (uint8_t)toupper(input[i]);
        out->write(out->ctx, chunk, n);
        input += n;
        input_len -= n;
    }
    return MODHASH_STATUS_OK;
}

static void upper_destroy(void *instance)
{
    free(instance);
}

static const modhash_plugin_v1_table table = {
    .abi_version = MODHASH_PLUGIN_ABI_VERSION,
    .table_size = sizeof(modhash_plugin_v1_table),
    .name = "c-upper",
    .create = upper_create,
    .call = upper_call,
    .destroy = upper_destroy,
};

__attribute__((visibility("default")))
const modhash_plugin_v1_table *modhash_plugin_v1(void)
{
    return &table;
}
