/* A modhash module whose method 0 answers what libhelper.so answers. With
 * FAIL_CREATE its create fails; with NO_ABI it exports no ABI table; with
 * MARKER_FILE its constructor creates that file first. */
#include <string.h>

#include "modhash_plugin.h"

#ifdef MARKER_FILE
#include <stdio.h>
__attribute__((constructor)) static void ran(void)
{
    FILE *f = fopen(MARKER_FILE, "w");
    if (f != NULL)
        fclose(f);
}
#endif

#ifndef NO_HELPER
const char *helper_marker(void);
#else
static const char *helper_marker(void) { return "no helper"; }
#endif

static int32_t create(const uint8_t *config, size_t config_len, void **instance,
                      modhash_sink *err)
{
    static int self;
    (void)config;
    (void)config_len;
    *instance = &self;
#ifdef FAIL_CREATE
    err->write(err->ctx, (const uint8_t *)"create fails", 12);
    return MODHASH_STATUS_ERROR;
#else
    (void)err;
    return MODHASH_STATUS_OK;
#endif
}

static int32_t call(void *instance, uint32_t method, const uint8_t *input,
                    size_t input_len, modhash_sink *out)
{
    const char *marker = helper_marker();
    (void)instance;
    (void)method;
    (void)input;
    (void)input_len;
    out->write(out->ctx, (const uint8_t *)marker, strlen(marker));
    return MODHASH_STATUS_OK;
}

static void destroy(void *instance)
{
    (void)instance;
}

#ifndef NO_ABI
static const modhash_plugin_v1_table table = {
    .abi_version = MODHASH_PLUGIN_ABI_VERSION,
    .table_size = sizeof(modhash_plugin_v1_table),
    .name = "needs-helper",
    .create = create,
    .call = call,
    .destroy = destroy,
};

__attribute__((visibility("default")))
const modhash_plugin_v1_table *modhash_plugin_v1(void)
{
    return &table;
}
#endif
