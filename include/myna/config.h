/* config.h: declared, typed configuration.
 *
 * conf/myna.conf is a GKeyFile with [global], [listener:NAME],
 * [host:DOMAIN] and [module:NAME] sections.  Every key is declared with its
 * type, default and bounds — the core's in the core, a module's in its
 * descriptor and manifest — so unknown keys are warned about with file and
 * line, and `mynactl check-config` needs no module loaded.  Typed getters
 * clamp out-of-range values to their bounds and log it. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  MYNA_CONFIG_STRING,
  MYNA_CONFIG_INT,     /* gint64 with min/max bounds */
  MYNA_CONFIG_BOOL,
  MYNA_CONFIG_LIST,    /* ';'-separated strings */
  MYNA_CONFIG_SIZE,    /* bytes: an integer with an optional K, M or G suffix */
  MYNA_CONFIG_DURATION,/* milliseconds: an integer with ms, s, m or h suffix */
} MynaConfigType;

/* One declared key.  Arrays of them end with a zeroed entry. */
typedef struct {
  const char    *name;
  MynaConfigType type;
  const char    *default_value;  /* as it would be written in the file */
  gint64         min;            /* bounds for INT, SIZE, DURATION; */
  gint64         max;            /* min == max == 0 means unbounded */
  const char    *description;
  /* ABI 2: where the parsed value goes in the module's typed config
   * struct (offsetof; gint64 for INT/SIZE/DURATION, gboolean for BOOL,
   * char * for STRING, char ** for LIST). */
  gsize          offset;
} MynaConfigKey;

#define MYNA_CONFIG_ERROR (myna_config_error_quark ())
GQuark myna_config_error_quark (void);

typedef enum {
  MYNA_CONFIG_ERROR_FAILED,
  MYNA_CONFIG_ERROR_PARSE,       /* not a valid key file */
  MYNA_CONFIG_ERROR_INVALID,     /* a value of the wrong type */
  MYNA_CONFIG_ERROR_MISSING,     /* a required section or key is absent */
} MynaConfigError;

/* Parses "64K", "1M" → bytes; "30s", "5m", "250ms" → ms.  FALSE on junk. */
gboolean myna_config_parse_size (const char *text, gint64 *out);
gboolean myna_config_parse_duration (const char *text, gint64 *out);

G_END_DECLS
