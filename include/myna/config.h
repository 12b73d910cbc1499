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
#include <stddef.h>

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

/* Declare one key of a module's typed config struct S: the key is named
 * after the field F, so a name is written once, and its parsed value goes
 * to offsetof (S, F).  Designated initialisers: quiet under -Wextra.
 *   MYNA_CONFIG_INT (RosterConfig, max_items, "20000", 1, 100000,
 *                    "most items one user's roster holds")
 * Each macro shares its name with the type it declares (an enumerator is
 * not followed by a parenthesis, so the two never clash).  MIN == MAX == 0
 * leaves a number unbounded. */
#define MYNA_CONFIG_KEY_(S, F, TYPE, DEFAULT, MIN, MAX, DESCRIPTION)   \
  { .name = #F, .type = (TYPE), .default_value = (DEFAULT),            \
    .min = (MIN), .max = (MAX), .description = (DESCRIPTION),          \
    .offset = offsetof (S, F) }
/* gint64 F; bounds clamp the parsed value. */
#define MYNA_CONFIG_INT(S, F, DEFAULT, MIN, MAX, DESCRIPTION) \
  MYNA_CONFIG_KEY_ (S, F, MYNA_CONFIG_INT, DEFAULT, MIN, MAX, DESCRIPTION)
/* gint64 F, in bytes ("64K"). */
#define MYNA_CONFIG_SIZE(S, F, DEFAULT, MIN, MAX, DESCRIPTION) \
  MYNA_CONFIG_KEY_ (S, F, MYNA_CONFIG_SIZE, DEFAULT, MIN, MAX, DESCRIPTION)
/* gint64 F, in milliseconds ("30s"). */
#define MYNA_CONFIG_DURATION(S, F, DEFAULT, MIN, MAX, DESCRIPTION) \
  MYNA_CONFIG_KEY_ (S, F, MYNA_CONFIG_DURATION, DEFAULT, MIN, MAX, DESCRIPTION)
/* gboolean F ("true" or "false"). */
#define MYNA_CONFIG_BOOL(S, F, DEFAULT, DESCRIPTION) \
  MYNA_CONFIG_KEY_ (S, F, MYNA_CONFIG_BOOL, DEFAULT, 0, 0, DESCRIPTION)
/* char *F, owned by the snapshot. */
#define MYNA_CONFIG_STRING(S, F, DEFAULT, DESCRIPTION) \
  MYNA_CONFIG_KEY_ (S, F, MYNA_CONFIG_STRING, DEFAULT, 0, 0, DESCRIPTION)
/* char **F (';'-separated in the file), owned by the snapshot. */
#define MYNA_CONFIG_LIST(S, F, DEFAULT, DESCRIPTION) \
  MYNA_CONFIG_KEY_ (S, F, MYNA_CONFIG_LIST, DEFAULT, 0, 0, DESCRIPTION)
/* Ends a static array of keys (MYNA_CONFIG_KEYS adds it itself). */
#define MYNA_CONFIG_END { .name = NULL }

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
