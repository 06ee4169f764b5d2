/*
 * An out-of-tree module nobody vouches for: neither hashed nor signed, so
 * the host runs it in the sandboxed worker. It implements only the modhash
 * module ABI.
 */
#include <string.h>

#include <modhash_plugin.h>

static int32_t unknown_create(const uint8_t *config, size_t config_len, void **instance,
			      modhash_sink *err)
{
	static int state;
	(void)config;
	(void)config_len;
	(void)err;
	*instance = &state;
	return MODHASH_STATUS_OK;
}

static int32_t unknown_call(void *instance, uint32_t method, const uint8_t *input,
			    size_t input_len, modhash_sink *out)
{
	static const char prefix[] = "unknown: saw ";
	(void)instance;
	(void)method;
	out->write(out->ctx, (const uint8_t *)prefix, sizeof(prefix) - 1);
	out->write(out->ctx, input, input_len);
	return MODHASH_STATUS_OK;
}

static void unknown_destroy(void *instance)
{
	(void)instance;
}

static const modhash_plugin_v1_table table = {
	MODHASH_PLUGIN_ABI_VERSION, sizeof(modhash_plugin_v1_table), "unknown",
	unknown_create, unknown_call, unknown_destroy,
};

__attribute__((visibility("default"))) const modhash_plugin_v1_table *modhash_plugin_v1(void)
{
	return &table;
}
