/* A modhash module whose method 0 answers the 16 bytes that follow the file
 * bytes of its own executable segment in memory: the page padding after
 * .text, which no elf-image digest covers and mmap maps with the page. */
#include <elf.h>
#include <link.h>
#include <string.h>

#include "modhash_plugin.h"

extern const ElfW(Ehdr) __ehdr_start;

static int32_t create(const uint8_t *config, size_t config_len, void **instance,
                      modhash_sink *err)
{
    static int self;
    (void)config;
    (void)config_len;
    (void)err;
    *instance = &self;
    return MODHASH_STATUS_OK;
}

static int32_t call(void *instance, uint32_t method, const uint8_t *input,
                    size_t input_len, modhash_sink *out)
{
    const char *base = (const char *)&__ehdr_start;
    const ElfW(Phdr) *phdr = (const ElfW(Phdr) *)(base + __ehdr_start.e_phoff);
    (void)instance;
    (void)method;
    (void)input;
    (void)input_len;
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

static void destroy(void *instance)
{
    (void)instance;
}

static const modhash_plugin_v1_table table = {
    .abi_version = MODHASH_PLUGIN_ABI_VERSION,
    .table_size = sizeof(modhash_plugin_v1_table),
    .name = "reads-padding",
    .create = create,
    .call = call,
    .destroy = destroy,
};

__attribute__((visibility("default")))
const modhash_plugin_v1_table *modhash_plugin_v1(void)
{
    return &table;
}
