/* The test modules. Method 0 answers what helper_marker() in the helper
 * library answers; with NO_HELPER it needs no helper; with READ_PADDING it
 * answers the 16 bytes that follow the file bytes of its own executable
 * segment in memory: the page padding after .text, which no elf-image
 * digest covers and mmap maps with the page. With FAIL_CREATE its create
 * fails; with NO_ABI it exports no ABI table; see marker.h for
 * MARKER_FILE. */
#include <elf.h>
#include <link.h>
#include <string.h>

#include "marker.h"
#include "modhash_plugin.h"

#ifdef READ_PADDING
extern const ElfW(Ehdr) __ehdr_start;

static int32_t answer(modhash_sink *out)
{
    const char *base = (const char *)&__ehdr_start;
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)(base + __ehdr_start.e_phoff);
    for (int i = 0; i < __ehdr_start.e_phnum; i++) {
        if (phdr[i].p_type == PT_LOAD && (phdr[i].p_flags & PF_X)) {
            /* The first PT_LOAD starts at vaddr 0 in a shared object, so
             * the ELF header's address is the load base. */
            out->write(out->ctx,
                       (const uint8_t *)base + phdr[i].p_vaddr + phdr[i].p_filesz,
                       16);
            return MODHASH_STATUS_OK;
        }
    }
    return MODHASH_STATUS_ERROR;
}
#else
#ifdef NO_HELPER
static const char *helper_marker(void) { return "no helper"; }
#else
const char *helper_marker(void);
#endif

static int32_t answer(modhash_sink *out)
{
    const char *marker = helper_marker();
    out->write(out->ctx, (const uint8_t *)marker, strlen(marker));
    return MODHASH_STATUS_OK;
}
#endif

/* create, call and destroy are unused with NO_ABI. */
__attribute__((unused))
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

__attribute__((unused))
static int32_t call(void *instance, uint32_t method, const uint8_t *input,
                    size_t input_len, modhash_sink *out)
{
    (void)instance;
    (void)method;
    (void)input;
    (void)input_len;
    return answer(out);
}

__attribute__((unused))
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
