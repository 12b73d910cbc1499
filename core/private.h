/* private.h: core structures shared between the files of libmyna.  Modules
 * never include this: they see only include/myna/. */
#pragma once

#include <myna/myna.h>
#include <gio/gio.h>
#include <gmodule.h>
#include "myna-config.h"

#include <sys/socket.h>

G_BEGIN_DECLS

/* ---- loop.c: one epoll set as one GSource -------------------------------- */

typedef struct _MynaPoller MynaPoller;
typedef struct _MynaPollWatch MynaPollWatch;
/* @events are EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits. */
typedef void (*MynaPollFunc) (MynaPollWatch *watch, guint32 events,
                              gpointer user_data);

/* workers.c: runs @work on a worker thread, then @done on the main
 * context (the thread-default context of the first caller). */
typedef void (*MynaWorkFunc) (gpointer data);
typedef void (*MynaWorkDone) (gpointer data);
void           myna_work_submit (MynaWorkFunc work, MynaWorkDone done, gpointer data);
/* accounts.c: counts @host's stored iteration counts if the storage has
 * no histogram of them yet (a database from an older version), and makes
 * the key of its decoy credentials, so that no login waits on either. */
void           myna_accounts_prepare_host (MynaStorage *storage, const char *host);
guint          myna_work_outstanding (void);

MynaPoller    *myna_poller_new (GMainContext *context);
void           myna_poller_free (MynaPoller *poller);
MynaPollWatch *myna_poller_add (MynaPoller *poller, int fd, guint32 events,
                                MynaPollFunc func, gpointer user_data);
void           myna_poller_modify (MynaPollWatch *watch, guint32 events);
/* Removes and frees the watch (the fd stays open); safe inside dispatch. */
void           myna_poller_remove (MynaPollWatch *watch);
/* Only right before close() of a descriptor that was never duplicated
 * (no dup, no fork without exec): the epoll registration goes with the
 * last descriptor of the socket, and a surviving one would deliver events
 * for the freed watch. */
void           myna_poller_remove_closing (MynaPollWatch *watch);
guint          myna_poller_count (MynaPoller *poller);
/* Busy-polls for @spin_us after each event before the main loop may sleep
 * (0: never); the epoll_wait calls made so far while spinning. */
void           myna_poller_set_spin (MynaPoller *poller, gint64 spin_us);
guint64        myna_poller_spin_laps (MynaPoller *poller);
/* @func runs after each batch of events, still inside dispatch. */
void           myna_poller_set_after_batch (MynaPoller *poller, void (*func) (gpointer),
                                            gpointer data);
gboolean       myna_poller_in_dispatch (MynaPoller *poller);
/* A batch opened outside the poller's own dispatch (storage completions):
 * output queued until myna_poller_batch_end goes out as one write per
 * peer.  begin is FALSE (and end must not run) inside a batch already.
 * gpointer arguments, to serve as myna_storage_set_dispatch_batch's. */
gboolean       myna_poller_batch_begin (gpointer poller);
void           myna_poller_batch_end (gpointer poller);

/* Counts the GSources attached to @context (for tests and stats). */
guint          myna_main_context_count_sources (GMainContext *context);

/* ---- config.c ------------------------------------------------------------ */

typedef struct _MynaConfig MynaConfig;

typedef enum {
  MYNA_DIAG_ERROR,
  MYNA_DIAG_WARNING,
} MynaDiagLevel;

typedef struct {
  MynaDiagLevel level;
  char         *file;
  guint         line;
  char         *message;
} MynaDiag;

void         myna_diag_free (MynaDiag *diag);

/* Loads @path.  Syntax errors fail; everything else is collected by
 * myna_config_check(). */
MynaConfig  *myna_config_load (const char *path, GError **error);
MynaConfig  *myna_config_load_data (const char *data, const char *name,
                                    GError **error);
void         myna_config_free (MynaConfig *config);
const char  *myna_config_get_path (MynaConfig *config);
/* Directory that relative paths in the file are resolved from. */
const char  *myna_config_get_base_dir (MynaConfig *config);
GKeyFile    *myna_config_get_keyfile (MynaConfig *config);

/* Declares the keys of module @module (section [module:NAME] and module
 * keys allowed in [host:*]). */
void         myna_config_declare_module (MynaConfig *config, const char *module,
                                         const MynaConfigKey *keys);
/* Validates every key of every section, and the declared defaults of
 * every module the file enables (lazy ones too: manifests only); returns
 * diagnostics (MynaDiag*).  Start, check-config and reloads all use it. */
GPtrArray   *myna_config_check (MynaConfig *config);
/* Checks what @config sets for module @module ([module:MODULE], and
 * MODULE.KEY in [host:H] for each H of @hosts) against @keys, the
 * declarations of a version of it not declared yet (a reload's).
 * Returns: (transfer full) array of MynaDiag* */
GPtrArray   *myna_config_check_module (MynaConfig *config, const char *module,
                                       const MynaConfigKey *keys,
                                       const char *const *hosts);
/* Why @text is not a valid value of key @def, or NULL when it is.
 * Returns: (transfer full) (nullable) */
char        *myna_config_value_problem (const MynaConfigKey *def, const char *text);

/* Typed reads of a declared key: @group is "global", "listener:x",
 * "host:d" or "module:m"; for module keys, the host section is looked at
 * first when @host is not NULL.  Values out of bounds are clamped, junk
 * falls back to the default; both are logged. */
char        *myna_config_get_string (MynaConfig *config, const char *group,
                                     const char *key);
gint64       myna_config_get_int (MynaConfig *config, const char *group,
                                  const char *key);
gboolean     myna_config_get_bool (MynaConfig *config, const char *group,
                                   const char *key);
char       **myna_config_get_list (MynaConfig *config, const char *group,
                                   const char *key);
char        *myna_config_get_module_string (MynaConfig *config, const char *host,
                                            const char *module, const char *key);
gint64       myna_config_get_module_int (MynaConfig *config, const char *host,
                                         const char *module, const char *key);
gboolean     myna_config_get_module_bool (MynaConfig *config, const char *host,
                                          const char *module, const char *key);
char       **myna_config_get_module_list (MynaConfig *config, const char *host,
                                          const char *module, const char *key);
/* A limit for listener @listener: its own override of the [global] key
 * @key when set, else the global value. */
gint64       myna_config_get_listener_limit (MynaConfig *config, const char *listener,
                                             const char *key);
/* Sections with a prefix, e.g. "host:" → the part after the colon. */
char       **myna_config_get_sections (MynaConfig *config, const char *prefix);
/* Resolves @path against the config's base directory. */
char        *myna_config_resolve_path (MynaConfig *config, const char *path);

/* ---- module.c: manifests, loading, the registry -------------------------- */

typedef struct _MynaManifest MynaManifest;
typedef struct _MynaModuleRegistry MynaModuleRegistry;

struct _MynaManifest {
  char          *name;
  char          *version;
  char          *description;
  guint          abi;
  char         **serves;
  char         **events;
  char         **requires;
  char         **provides;       /* services: "NAME/VERSION" */
  char         **uses;           /* services it needs: "NAME/VERSION" (minimum) */
  char         **features;       /* disco features, advertised while enabled */
  char         **account_features; /* the same, for accounts' bare JIDs */
  MynaModuleMode mode;
  char          *so_path;        /* the .so beside the manifest */
  char          *manifest_path;
  MynaConfigKey *config_keys;    /* from the [config] group, owned */
  guint          n_config_keys;
};

/* Parses one NAME.module file.  Returns: (transfer full) (nullable) */
MynaManifest *myna_manifest_load (const char *path, GError **error);
void          myna_manifest_free (MynaManifest *manifest);
/* Copies the descriptor a .so exports (@raw, from @path) into @out,
 * zeroed: MIN (struct_size, sizeof) bytes, so a shorter descriptor reads
 * as NULL/0 fields, never past its end.  FALSE for another ABI or a
 * descriptor smaller than the ABI-1 fields (through `restore`). */
gboolean      myna_module_desc_normalise (const MynaModuleDesc *raw, const char *path,
                                          MynaModuleDesc *out, GError **error);
/* The manifest of @desc (normalised) as key-file text, for the .so file
 * named @library; NULL with @error when the descriptor is not valid (no
 * name, a config default that is not a value of its key).
 * Returns: (transfer full) (nullable) */
char         *myna_manifest_from_desc (const MynaModuleDesc *desc, const char *library,
                                       GError **error);
/* A module path scan not yet applied: manifests new to the registry and
 * names whose manifest file is gone (config reload checks it first). */
typedef struct _MynaModuleScan MynaModuleScan;
MynaModuleScan *myna_module_registry_rescan (MynaModuleRegistry *registry,
                                             const char *const *dirs);
/* Declares in @config the keys of the modules the registry would have
 * once @scan is applied. */
void          myna_module_scan_declare (MynaModuleRegistry *registry, MynaModuleScan *scan,
                                        MynaConfig *config);
/* Adds the new manifests, logs and drops those gone (unless loaded). */
void          myna_module_scan_apply (MynaModuleRegistry *registry, MynaModuleScan *scan);
void          myna_module_scan_free (MynaModuleScan *scan);
/* Rebuilds every loaded instance's typed config snapshot (config reload). */
void          myna_module_registry_config_changed (MynaModuleRegistry *registry);

MynaModuleRegistry *myna_module_registry_new (MynaServer *server);
void          myna_module_registry_free (MynaModuleRegistry *registry);
/* Scans directories for manifests (later directories do not override). */
void          myna_module_registry_scan (MynaModuleRegistry *registry,
                                         const char *const *dirs);
MynaManifest *myna_module_registry_find (MynaModuleRegistry *registry,
                                         const char *name);
/* Enables module @name on @host: eager ones load now, lazy ones get lazy
 * routes.  FALSE with @error when unknown or failing. */
gboolean      myna_module_enable (MynaModuleRegistry *registry, MynaHost *host,
                                  const char *name, GError **error);
/* Loads the instance of @name on @host now (for lazy routes and mynactl). */
MynaModule   *myna_module_load (MynaModuleRegistry *registry, MynaHost *host,
                                const char *name, GError **error);
/* The router's load of a lazy module for a stanza or event: a failure is
 * logged once and marks (@host, @name) failed; a marked module is not
 * opened again (NULL, silently) until myna_module_load_fresh or a reload. */
MynaModule   *myna_module_load_lazy (MynaModuleRegistry *registry, MynaHost *host,
                                     const char *name);
gboolean      myna_module_is_failed (MynaModuleRegistry *registry, MynaHost *host,
                                     const char *name);
/* `mynactl load`: clears the failed marks of @name, reads its manifest again
 * from disk when none of its code is open, then loads it on @host. */
MynaModule   *myna_module_load_fresh (MynaModuleRegistry *registry, MynaHost *host,
                                      const char *name, GError **error);
/* Unloads @name on @host and drops its lazy routes (config reload). */
gboolean      myna_module_disable (MynaModuleRegistry *registry, MynaHost *host,
                                   const char *name);
gboolean      myna_module_unload (MynaModuleRegistry *registry, MynaHost *host,
                                  const char *name, GError **error);
gboolean      myna_module_reload (MynaModuleRegistry *registry, MynaHost *host,
                                  const char *name, GError **error);
/* Unloads the modules that use what @name provides on @host (and theirs,
 * users first), then @name. */
gboolean      myna_module_unload_cascade (MynaModuleRegistry *registry, MynaHost *host,
                                          const char *name, GError **error);
gboolean      myna_module_is_loaded (MynaModuleRegistry *registry,
                                     MynaHost *host, const char *name);
/* Lines describing loaded modules, for mynactl. */
void          myna_module_registry_describe (MynaModuleRegistry *registry,
                                             GString *out);
void          myna_module_registry_unload_all (MynaModuleRegistry *registry);
/* Ties @storage's operations to the modules queueing them (holds). */
void          myna_module_registry_set_storage (MynaModuleRegistry *registry,
                                                MynaStorage *storage);
/* Declares every manifest's configuration keys in @config. */
void          myna_module_registry_declare_all (MynaModuleRegistry *registry,
                                                MynaConfig *config);

/* ---- router.c: routing table and hooks ----------------------------------- */

typedef struct _MynaRouter MynaRouter;
typedef struct _MynaHook MynaHook;

MynaRouter  *myna_router_new (MynaServer *server);
void         myna_router_free (MynaRouter *router);
/* Adds a route; FALSE when (host, type, ns, element) has an owner. */
gboolean     myna_router_add_iq (MynaRouter *router, MynaHost *host,
                                 MynaIqType type, const char *ns,
                                 const char *element, MynaModule *owner,
                                 MynaStanzaHandler handler, gpointer data,
                                 GDestroyNotify destroy);
/* Lazy routes: (host, ns) and (host, event) → module name. */
void         myna_router_add_lazy_ns (MynaRouter *router, MynaHost *host,
                                      const char *ns, const char *module);
void         myna_router_add_lazy_event (MynaRouter *router, MynaHost *host,
                                         const char *event, const char *module);
void         myna_router_add_hook (MynaRouter *router, MynaHost *host,
                                   const char *event, int priority,
                                   MynaModule *owner, MynaStanzaHandler handler,
                                   gpointer data, GDestroyNotify destroy);
void         myna_router_add_stream_handler (MynaRouter *router, MynaHost *host,
                                             const char *ns, const char *element,
                                             MynaModule *owner,
                                             MynaStanzaHandler handler,
                                             gpointer data,
                                             GDestroyNotify destroy);
void         myna_router_remove_lazy (MynaRouter *router, MynaHost *host,
                                      const char *module);
/* Removes everything @owner registered. */
void         myna_router_remove_owner (MynaRouter *router, MynaModule *owner);
/* Runs the chain of @event for @host; returns MYNA_HANDLED if one did. */
MynaResult   myna_router_fire (MynaRouter *router, MynaHost *host,
                               const char *event, MynaCall *call,
                               MynaStanza *stanza);
/* Dispatches a stream-level element; MYNA_PASS when nobody handles it. */
MynaResult   myna_router_stream_element (MynaRouter *router, MynaCall *call,
                                         MynaStanza *stanza);
/* Routes a stanza: see myna_server_route(). */
void         myna_router_route (MynaRouter *router, MynaCall *call,
                                MynaStanza *stanza);
/* Lines describing the routing table, for mynactl. */
void         myna_router_describe (MynaRouter *router, GString *out);

/* A call on the stack. */
struct _MynaCall {
  MynaServer  *server;
  MynaHost    *host;
  MynaSession *session;
  MynaJid     *from;
  MynaJid     *to;
};

/* ---- server.c / connection.c --------------------------------------------- */

struct _MynaHost {
  MynaServer *server;
  char       *name;
  GHashTable *features;        /* char* → owner count (GUINT) */
  GHashTable *account_features; /* the same, advertised for accounts */
  GHashTable *accounts;        /* local → GPtrArray of MynaSession* (bound) */
  GPtrArray  *stream_features; /* FeaturesEntry* */
  char      **modules;         /* enabled module names, from the config */
  /* A [component:DOMAIN]: served by a module, no accounts, no clients. */
  gboolean    component;
  char       *component_module; /* the module serving it */
  /* Of a component: the main host whose services its modules use (the
   * one it is a subdomain of, else the first by name); of a main host,
   * itself. */
  MynaHost   *service_host;
  /* Disco registrations (disco.c), each with its owner (NULL: the core). */
  GPtrArray  *identities;      /* DiscoIdentityEntry* */
  GPtrArray  *account_identities; /* DiscoIdentityEntry*, at accounts' bare JIDs */
  GPtrArray  *disco_items;     /* DiscoItemEntry* */
  GPtrArray  *disco_extensions; /* DiscoExtensionEntry* */
};

/* disco.c: a host's disco identities, items and XEP-0128 extensions. */
void        myna_host_disco_init (MynaHost *host);
void        myna_host_disco_clear (MynaHost *host);
void        myna_host_add_identity (MynaHost *host, MynaModule *owner, const char *category,
                                    const char *type, const char *name);
/* The same, for this host's accounts (at their bare JIDs). */
void        myna_host_add_account_identity (MynaHost *host, MynaModule *owner,
                                            const char *category, const char *type,
                                            const char *name);
void        myna_host_add_disco_item (MynaHost *host, MynaModule *owner, const char *jid,
                                      const char *node, const char *name);
/* FALSE with a warning when @form is no XEP-0004 form with a hidden
 * FORM_TYPE, or the host has a form of that FORM_TYPE already. */
gboolean    myna_host_add_disco_extension (MynaHost *host, MynaModule *owner,
                                           MynaStanza *form);
/* Removes everything @owner registered on @host. */
void        myna_host_remove_disco (MynaHost *host, MynaModule *owner);

typedef struct {
  MynaFeaturesFunc func;
  gpointer         data;
  GDestroyNotify   destroy;
  MynaModule      *owner;
} MynaFeaturesEntry;

typedef struct {
  gsize  max_stanza_size_preauth;
  gsize  max_stanza_size;
  guint  max_depth;
  guint  max_attrs;
  gsize  max_output;          /* soft: above it the queue must drain in time */
  gsize  max_output_hard;     /* queued bytes that cut a client off at once */
  guint  output_drain_ms;     /* time to drain back below max_output */
  guint  auth_timeout_ms;
  guint  max_connections_per_ip; /* 0: no cap */
  gsize  rate;                   /* bytes/s read per session, 0: none */
  gsize  burst;                  /* bucket size */
} MynaLimits;

/* How often each limit was hit (mynactl stats). */
typedef struct {
  guint64 per_ip_refused;
  guint64 rate_paused;
  guint64 output_overflow;
  guint64 output_budget_cuts; /* cut off because all queues together were over max_output_total */
  guint64 auth_timeouts;
  guint64 parsers_released;  /* idle sessions' parsers freed by the sweep */
  guint64 storage_backpressure_pauses; /* times the storage backlog paused reading */
} MynaLimitCounters;

typedef struct _MynaListener MynaListener;
typedef struct _MynaIqRequests MynaIqRequests;
typedef struct _MynaTls MynaTls;
typedef struct _MynaHttp MynaHttp;

struct _MynaServer {
  GMainContext       *context;
  GMainLoop          *loop;
  MynaConfig         *config;
  char               *data_dir;
  MynaPoller         *poller;
  MynaStorage        *storage;
  MynaRouter         *router;
  MynaModuleRegistry *modules;
  MynaTls            *tls;
  MynaHttp           *http;         /* NULL in a build without HTTP */
  gboolean            require_encryption;
  GHashTable         *hosts;        /* name → MynaHost* */
  GPtrArray          *listeners;
  GHashTable         *connections;  /* MynaSession* set, hibernated ones too */
  guint               sessions_hibernated; /* of connections, those without one */
  GHashTable         *per_ip;       /* ip string → count */
  GPtrArray          *flush_queue;  /* sessions with output queued this batch */
  GQueue              read_order;   /* sessions by last read, oldest first */
  guint               conn_high_water; /* most connections since the last trim */
  MynaLimits          limits;
  MynaLimitCounters   counters;
  /* Output queued to all sessions together (connection.c keeps it exact). */
  gsize               max_output_total;  /* the budget: [global] max_output_total */
  gsize               output_total;      /* bytes queued now, all sessions */
  gsize               output_total_peak; /* the highest output_total since start */
  GPtrArray          *output_over_soft;  /* sessions whose queue is over max_output */
  gboolean            output_cutting;    /* a budget cut is on the stack */
  guint               budget_cuts_unlogged; /* cuts since the last log line */
  gint64              budget_log_at;     /* monotonic µs before which cuts are only counted */
  /* Backpressure: reading from clients stops while the storage backlog is
   * over [global] storage_backlog_high (connection.c). */
  gboolean            storage_paused;
  gint64              storage_paused_at;        /* monotonic µs it began */
  guint               storage_paused_sessions;  /* sessions that stopped reading */
  gpointer            admin;
  MynaIqRequests     *iq_requests;  /* iqreq.c: modules' IQ requests pending */
  gboolean            stopping;
  guint               sweep_id;
  guint64             stanzas_in;
  guint64             stanzas_out;
  guint64             streams_errored;
  GPtrArray          *admin_commands; /* admin.c: modules' commands, oldest first */
};

/* Takes ownership of @config. */
MynaServer *myna_server_new (MynaConfig *config, GError **error);
/* Replaces the configuration with *@fresh, leaving the old one in *@fresh. */
void        myna_server_swap_config (MynaServer *server, MynaConfig **fresh);
/* Reads the module manifests of the module path. */
void        myna_server_scan_modules (MynaServer *server);
/* Opens listeners, storage, modules.  FALSE with @error on failure. */
gboolean    myna_server_start (MynaServer *server, GError **error);
/* Sends </stream:stream> to every session, flushes, stops listening. */
void        myna_server_stop (MynaServer *server);
void        myna_server_free (MynaServer *server);
/* Rereads the configuration file (SIGHUP, mynactl reload-config) and the
 * module path, checks them as at start and applies them only when they
 * have no error; the running configuration stays otherwise.  @report
 * (nullable) gets one "FILE:LINE: error|warning: …" line per diagnostic. */
gboolean    myna_server_reload_config (MynaServer *server, GString *report,
                                       GError **error);
/* The port a listener actually bound (for port 0 in tests), or 0. */
guint16     myna_server_get_listener_port (MynaServer *server, const char *name);
MynaHost   *myna_server_add_host (MynaServer *server, const char *name);
guint       myna_server_count_sessions (MynaServer *server);
void        myna_server_describe_stats (MynaServer *server, GString *out);

/* Connections (connection.c). */
MynaSession *myna_connection_new (MynaServer *server, MynaListener *listener,
                                  int fd, const char *peer, const char *ip);
void         myna_connection_free (MynaSession *session);
/* Returns how many parsers it released. */
guint        myna_connections_sweep (MynaServer *server, gint64 idle_us);
/* Writes out what the sessions queued during a batch of events. */
void         myna_connections_flush_queued (gpointer server);
/* The storage backlog callback (MynaStorageBacklogFunc, @server as user
 * data): over the high watermark client sessions stop reading; back under
 * the low one they all resume. */
void         myna_connections_storage_backlog (MynaStorage *storage, gboolean over,
                                               guint pending, guint64 pending_bytes,
                                               gpointer server);
/* Logs the budget cuts not yet logged, once the log interval has passed. */
void         myna_connections_log_budget (MynaServer *server);
/* Runs MYNA_EVENT_STANZA_TO_CLIENT for @stanza going to @session (a bound
 * session's client stanzas only): TRUE when it must not be written (a
 * handler took it over, or the session is hibernated). */
gboolean     myna_session_to_client_taken (MynaSession *session, MynaStanza *stanza);
void         myna_host_register_session (MynaHost *host, MynaSession *session);
void         myna_host_unregister_session (MynaHost *host, MynaSession *session);

/* tls.c */
#include <gnutls/gnutls.h>
/* Mozilla's "intermediate" TLS profile (v5.7) as a GnuTLS priority
 * string: TLS 1.2 and 1.3; AES-GCM and ChaCha20-Poly1305 only (no CBC, no
 * CCM, no SHA-1 MAC); ECDHE (ECDSA or RSA) or DHE-RSA key exchange, never
 * RSA; groups X25519, P-256, P-384, and for DHE the 2048-bit group of RFC
 * 7919, ffdhe2048 (GnuTLS shares one group list between the versions, so a
 * TLS 1.3 client offering only ffdhe2048 gets it too: the same strength as
 * DHE in TLS 1.2, and without it a client that negotiates groups would not
 * get DHE at all); no SHA-1 signatures.  The default of tls_priority. */
#define MYNA_TLS_PRIORITY_INTERMEDIATE                                        \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"                                \
  ":-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"                \
  ":-MAC-ALL:+AEAD"                                                           \
  ":-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA"                                 \
  ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-FFDHE2048" \
  ":-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1"
MynaTls         *myna_tls_new (MynaServer *server, GError **error);
void             myna_tls_free (MynaTls *tls);
gnutls_session_t myna_tls_session_new (MynaTls *tls, int fd);
/* Channel binding data of @type for SASL -PLUS, or NULL. */
GBytes          *myna_tls_channel_binding (gnutls_session_t session, const char *type);
/* The limits in force on connections of @listener (NULL: the server's). */
const MynaLimits *myna_listener_get_limits (MynaListener *listener, MynaServer *server);
/* The listener's kind ("c2s", "c2s_tls"). */
const char      *myna_listener_get_kind (MynaListener *listener);

/* http.c (built with MYNA_HAVE_HTTP): the libsoup server and its routes. */
MynaHttp   *myna_http_new (MynaServer *server);
/* Reads the [global] http_* limits (at start and on reload). */
void        myna_http_configure (MynaHttp *http, MynaConfig *config);
/* Serves HTTP on @fd, a bound and listening socket it takes. */
gboolean    myna_http_listen_fd (MynaHttp *http, const char *name, int fd, GError **error);
/* New requests get 503 from now on; those in progress go on. */
void        myna_http_stop (MynaHttp *http);
/* Lets answers in progress go out (bounded), then closes everything. */
void        myna_http_free (MynaHttp *http);
/* Removes the routes @owner added (their destroy notifies run): it
 * unloads. */
void        myna_http_remove_owner (MynaHttp *http, MynaModule *owner);

/* server.c: accept(2) for a listening socket that backs off instead of
 * spinning when the process is out of descriptors or memory (EMFILE,
 * ENFILE, ENOBUFS, ENOMEM): the socket is not watched for a while (from
 * ACCEPT_BACKOFF_MIN_MS, doubling up to ACCEPT_BACKOFF_MAX_MS), then
 * watched again; the failures are logged once per ACCEPT_REPORT_S with
 * a count.  Errors of one aborted connection (ECONNABORTED, EPROTO, the
 * network errors Linux passes on) are retried at once. */
typedef struct {
  char          *what;         /* for the log: "listener c2s", "admin socket" */
  int            fd;
  MynaPollWatch *watch;
  MynaTimer     *timer;        /* resumes watching after a back-off */
  guint          delay_ms;     /* the current back-off; 0 when none */
  guint64        failed;       /* failures not yet reported */
  gint64         reported_at;  /* monotonic µs of the last report */
  gboolean       trouble;      /* a failure was reported; recovery is to be */
  guint64        total_failed; /* since start (tests, stats) */
} MynaAcceptor;

void        myna_acceptor_init (MynaAcceptor *a, const char *what, int fd,
                                MynaPollWatch *watch);
/* Stops the back-off timer and forgets the watch (the caller removes it). */
void        myna_acceptor_clear (MynaAcceptor *a);
/* A new non-blocking, close-on-exec descriptor, or -1 when there is none
 * to take now: the caller stops accepting until the next event. */
int         myna_acceptor_accept (MynaAcceptor *a, struct sockaddr *sa, socklen_t *sl);

/* admin.c */
gboolean    myna_admin_start (MynaServer *server, const char *path,
                              GError **error);
void        myna_admin_stop (MynaServer *server);
/* Registers a module's admin command (myna_module_add_admin_command, whose
 * rules it applies), and drops all of @owner's (on unload). */
gboolean    myna_admin_add_command (MynaServer *server, MynaModule *owner,
                                    const char *name, const char *usage,
                                    MynaAdminCommandFunc func, gpointer user_data,
                                    GDestroyNotify destroy);
void        myna_admin_remove_owner (MynaServer *server, MynaModule *owner);

/* Sorts an array of strings (GLib 2.74 has no g_ptr_array_sort_values). */
void        myna_ptr_array_sort_strings (GPtrArray *array);

/* log.c */
void        myna_log_init (void);
void        myna_log_set_level (const char *level);

/* module.c: the handle's owner bookkeeping used by router/server. */
const char *myna_module_owner_name (MynaModule *mod);

/* service.c: the service registry, one per module registry. */
typedef struct _MynaServices MynaServices;
MynaServices *myna_services_new (void);
void          myna_services_free (MynaServices *services);
/* @mod unloads: its provisions go (their users are unbound) and its own
 * handles are detached. */
void          myna_services_unregister (MynaServices *services, MynaModule *mod);
/* @mod is freed: its handles are. */
void          myna_services_finalize (MynaServices *services, MynaModule *mod);
/* The loaded instances whose declared `.uses` are bound to @provider;
 * @what (may be NULL) gets the services concerned ("roster/1, …").
 * Returns: (transfer container) MynaModule* */
/* Whether a new version of @provider, providing @provides, still gives
 * every loaded module using @provider what it needs; FALSE with
 * MYNA_MODULE_ERROR_DEPENDENCY naming the first user it would strand. */
gboolean      myna_services_check_provides (MynaServices *services, MynaModule *provider,
                                            char **provides, GError **error);
GPtrArray    *myna_services_users_of (MynaServices *services, MynaModule *provider,
                                      GString *what);
/* "NAME/VERSION" → NAME and VERSION (> 0); FALSE when malformed. */
gboolean      myna_service_parse_spec (const char *spec, char **name, guint *version);
/* Whether @specs (NULL-terminated, may be NULL) names service @name;
 * @version gets its version. */
gboolean      myna_service_spec_lists (char **specs, const char *name, guint *version);
/* module.c: what service.c needs of an instance. */
MynaServices *myna_module_get_services (MynaModule *mod);
MynaManifest *myna_module_get_manifest (MynaModule *mod);
/* Whether a module providing @name is being loaded on @mod's host
 * further up the dependency chain (it provides once its `load` runs). */
gboolean      myna_module_provider_loading (MynaModule *mod, const char *name);
/* server.c: the server's whole storage (core stores included), for core
 * code; modules get their view (myna_module_get_storage).
 * Returns: (transfer none) */
MynaStorage *myna_host_get_storage (MynaHost *host);

/* The module whose code runs now ("current"): the core enters a module
 * around every call into it (load, unload, handlers, hooks, stream
 * features, timers, storage and account callbacks) and restores the
 * previous one after, so what the module creates meanwhile (session data,
 * MynaTimers, storage operations) is known to be its own.  Kept per
 * thread; modules run on the main loop thread.  myna_module_enter returns
 * the previous module, to give to myna_module_leave. */
MynaModule *myna_module_enter (MynaModule *mod);
void        myna_module_leave (MynaModule *previous);
MynaModule *myna_module_current (void);
/* A hold keeps an instance's state and its shared object after unload
 * until every callback of it still pending has run: storage and account
 * operations it queued and router entries on the stack hold it.  NULL-safe;
 * hold returns @mod.  Main loop thread only. */
MynaModule *myna_module_hold (MynaModule *mod);
void        myna_module_release (MynaModule *mod);

/* connection.c: removes, on every session, the data @match accepts (given
 * the module that set it, NULL for none, and its destroy notify), running
 * their destroy notifies.  Returns how many. */
typedef gboolean (*MynaSessionDataMatch) (MynaSession *session, MynaModule *owner,
                                          GDestroyNotify destroy, gpointer user_data);
guint       myna_connections_drop_data (MynaServer *server, MynaSessionDataMatch match,
                                        gpointer user_data);
/* connection.c: removes, on every session, the drain waiters
 * (myna_session_when_drained) @match accepts, given the module that
 * registered them, their callback and destroy notify; runs the destroy
 * notifies, never the callbacks.  Returns how many. */
typedef gboolean (*MynaWaiterMatch) (MynaModule *owner, gconstpointer func,
                                     GDestroyNotify destroy, gpointer user_data);
guint       myna_connections_drop_waiters (MynaServer *server, MynaWaiterMatch match,
                                           gpointer user_data);

/* module.c: whether @mod is unloaded, in which case it refuses a new
 * registration @what (logged) and runs @destroy on @user_data. */
gboolean    myna_module_refuses (MynaModule *mod, const char *what, gpointer user_data,
                                 GDestroyNotify destroy);

/* iqreq.c: takes @stanza if it is the reply to a module's pending IQ
 * request (its id, from the JID asked): the request's callback runs and
 * the stanza goes no further.  Called before any hook or route. */
gboolean    myna_iq_requests_take (MynaServer *server, MynaStanza *stanza);
/* Drops @owner's pending requests (unload): only their destroy runs. */
void        myna_iq_requests_drop_owner (MynaServer *server, MynaModule *owner);
void        myna_iq_requests_free (MynaServer *server);

/* timer.c: a timer owned by @owner (NULL: the core's); myna_timer_new
 * makes one owned by the current module. */
MynaTimer  *myna_timer_new_owned (MynaTimerFunc func, gpointer user_data, MynaModule *owner);
/* Stops every armed timer of this thread @match accepts; returns how many. */
typedef gboolean (*MynaTimerMatch) (MynaModule *owner, MynaTimerFunc func, gpointer user_data);
guint       myna_timers_stop_matching (MynaTimerMatch match, gpointer user_data);
/* Tests only (fuzz-session): this thread's timers run as if @us more
 * microseconds had passed; those due by then fire at the next iteration. */
void        myna_timers_advance_for_testing (gint64 us);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaConfig, myna_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaManifest, myna_manifest_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaModuleScan, myna_module_scan_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaDiag, myna_diag_free)

G_END_DECLS
