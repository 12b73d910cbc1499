/* caps.h: the entity-capabilities service ("caps/1", XEP-0115), provided
 * by the caps module, for modules that send to resources by what they
 * support: personal eventing (a contact's resource gets a node's
 * notifications when its capabilities show "NODE+notify"), or a third
 * party's.
 *
 * The caps module reads the <c xmlns='http://jabber.org/protocol/caps'
 * hash node ver/> of every available presence a local session sends,
 * asks the resource once per unknown ver (disco#info to the full JID at
 * node#ver), verifies the answer against the ver (XEP-0115 §5: sha-1,
 * sha-256 and the other hashes GnuTLS has; a mismatch is never cached)
 * and caches the feature set per (hash, ver), bounded in memory (least
 * recently used dropped first).  A lookup is one hash-table access.
 *
 *   MYNA_MODULE_DEFINE (mine, …, .uses = MYNA_STRV ("caps/1"));
 *   … if (myna_caps_has_feature (caps, session, "urn:xmpp:avatar:metadata+notify")) …
 *
 * Left out of `.uses` it is optional: while no caps module is loaded the
 * wrappers answer MYNA_CAPS_UNKNOWN / NULL.  When a session's
 * capabilities become known (or change), the caps module fires
 * MYNA_EVENT_CAPS_UPDATED on the session's host: the call is
 * myna_call_new (host, session), the stanza the presence that carried
 * them. */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_CAPS_SERVICE "caps"
/* Fired when a local session's capabilities became known or changed. */
#define MYNA_EVENT_CAPS_UPDATED "caps/updated"

typedef enum {
  MYNA_CAPS_UNKNOWN = -1,  /* not known (yet): no <c/>, or being verified */
  MYNA_CAPS_NO      = 0,
  MYNA_CAPS_YES     = 1,
} MynaCapsAnswer;

/* The table of caps/1; fields are only ever added at the end. */
typedef struct {
  gsize            size;
  /* Whether @session's current capabilities include @feature. */
  MynaCapsAnswer (*has_feature) (MynaSession *session, const char *feature);
  /* @session's current features, sorted, or NULL when unknown.
   * Returns: (transfer full) (nullable): a NULL-terminated array */
  char         **(*features)    (MynaSession *session);
  /* The XEP-0115 ver (§5.1 verification string, hashed with @hash:
   * "sha-1", "sha-256", …) of the disco#info <query/> @query, as an
   * entity announcing its own capabilities computes it; NULL when @query
   * cannot have one (a duplicate identity or feature, two forms of one
   * FORM_TYPE) or @hash is unknown.
   * Returns: (transfer full) (nullable) */
  char          *(*ver)         (MynaStanza *query, const char *hash);
} MynaCapsService;

static inline MynaCapsAnswer
myna_caps_has_feature (MynaService *caps, MynaSession *session, const char *feature)
{
  const MynaCapsService *t = caps != NULL ? (const MynaCapsService *) myna_service_get_table (caps) : NULL;
  MynaModule *previous;
  MynaCapsAnswer answer;

  if (t == NULL)
    return MYNA_CAPS_UNKNOWN;
  previous = myna_service_enter (caps);
  answer = t->has_feature (session, feature);
  myna_service_leave (previous);
  return answer;
}

/* Returns: (transfer full) (nullable) */
static inline char **
myna_caps_features (MynaService *caps, MynaSession *session)
{
  const MynaCapsService *t = caps != NULL ? (const MynaCapsService *) myna_service_get_table (caps) : NULL;
  MynaModule *previous;
  char **features;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (caps);
  features = t->features (session);
  myna_service_leave (previous);
  return features;
}

/* Returns: (transfer full) (nullable): NULL also while no provider
 * with the ver function is bound */
static inline char *
myna_caps_ver (MynaService *caps, MynaStanza *query, const char *hash)
{
  const MynaCapsService *t = caps != NULL ? (const MynaCapsService *) myna_service_get_table (caps) : NULL;
  MynaModule *previous;
  char *ver;

  if (t == NULL || t->size < G_STRUCT_OFFSET (MynaCapsService, ver) + sizeof t->ver)
    return NULL;
  previous = myna_service_enter (caps);
  ver = t->ver (query, hash);
  myna_service_leave (previous);
  return ver;
}

G_END_DECLS
