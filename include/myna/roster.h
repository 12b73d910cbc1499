/* roster.h: the roster service ("roster/1"), provided by the roster module
 * (RFC 6121 rosters and subscriptions), for modules that read rosters:
 * presence, blocking, disco, last, or a third party's.
 *
 *   MYNA_MODULE_DEFINE (mine, …, .uses = MYNA_STRV ("roster/1"));
 *   static MynaService *roster;
 *   … in load: roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, error);
 *   … later:   MynaRosterState st;
 *              if (myna_roster_get_state (roster, host, "juliet", "romeo@example.net", &st)
 *                  && (st.sub & MYNA_ROSTER_SUB_FROM)) …
 *
 * Leaving it out of `.uses` makes it optional: while no roster module is
 * loaded on the host the wrappers answer as for an empty roster.  Items
 * are <item xmlns='jabber:iq:roster'/> stanzas as stored, with the
 * roster's private state in a child <state xmlns='urn:myna:roster:0'/>:
 * never modify them, and never show them to a client as they are.  The
 * wrappers run the roster's code as the roster module
 * (myna_service_enter). */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_ROSTER_SERVICE "roster"

typedef enum {
  MYNA_ROSTER_SUB_NONE = 0,
  MYNA_ROSTER_SUB_TO   = 1 << 0,   /* the user sees the contact's presence */
  MYNA_ROSTER_SUB_FROM = 1 << 1,   /* the contact sees the user's presence */
  MYNA_ROSTER_SUB_BOTH = MYNA_ROSTER_SUB_TO | MYNA_ROSTER_SUB_FROM,
} MynaRosterSub;

/* The subscription state of one item (RFC 6121 Appendix A). */
typedef struct {
  MynaRosterSub sub;
  gboolean      ask;          /* pending out */
  gboolean      pending_in;   /* an inbound request waits for an answer */
  gboolean      approved;     /* pre-approved */
  gboolean      hidden;       /* exists only for a pending inbound request */
} MynaRosterState;

/* The table of roster/1.  Fields are only ever added at the end, with a
 * new version; @size is sizeof the provider's table. */
typedef struct {
  gsize        size;
  /* The roster of @user@host: contact JID → <item/> (MynaStanza*, never
   * to be modified).  Returns: (transfer full) a GHashTable reference */
  GHashTable *(*load)          (MynaHost *host, const char *user);
  /* The roster of @session's account, its own cached copy first (a
   * closing session is no longer among the account's sessions).
   * Returns: (transfer full) a GHashTable reference */
  GHashTable *(*load_for)      (MynaSession *session);
  /* One item, or NULL.  Returns: (transfer full) (nullable) */
  MynaStanza *(*get)           (MynaHost *host, const char *user, const char *contact);
  /* The state of @item. */
  void        (*item_state)    (const MynaStanza *item, MynaRosterState *state);
  /* The pending inbound subscription request stored in @item, trimmed as
   * it is redelivered, or NULL.  Returns: (transfer full) (nullable) */
  MynaStanza *(*item_request)  (const MynaStanza *item);
} MynaRosterService;

/* The table while a roster is bound (NULL otherwise). */
static inline const MynaRosterService *
myna_roster_table (MynaService *roster)
{
  return (const MynaRosterService *) myna_service_get_table (roster);
}

/* Returns: (transfer full) a GHashTable reference (empty when unbound) */
static inline GHashTable *
myna_roster_load (MynaService *roster, MynaHost *host, const char *user)
{
  const MynaRosterService *t = myna_roster_table (roster);
  GHashTable *table;
  MynaModule *previous;

  if (t == NULL)
    return g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                  (GDestroyNotify) myna_stanza_unref);
  previous = myna_service_enter (roster);
  table = t->load (host, user);
  myna_service_leave (previous);
  return table;
}

/* Returns: (transfer full) a GHashTable reference (empty when unbound) */
static inline GHashTable *
myna_roster_load_for (MynaService *roster, MynaSession *session)
{
  const MynaRosterService *t = myna_roster_table (roster);
  GHashTable *table;
  MynaModule *previous;

  if (t == NULL)
    return g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                  (GDestroyNotify) myna_stanza_unref);
  previous = myna_service_enter (roster);
  table = t->load_for (session);
  myna_service_leave (previous);
  return table;
}

/* Returns: (transfer full) (nullable) */
static inline MynaStanza *
myna_roster_get (MynaService *roster, MynaHost *host, const char *user, const char *contact)
{
  const MynaRosterService *t = myna_roster_table (roster);
  MynaStanza *item;
  MynaModule *previous;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (roster);
  item = t->get (host, user, contact);
  myna_service_leave (previous);
  return item;
}

/* Sets @state from @item (all zero when unbound). */
static inline void
myna_roster_item_state (MynaService *roster, const MynaStanza *item, MynaRosterState *state)
{
  const MynaRosterService *t = myna_roster_table (roster);
  MynaModule *previous;

  *state = (MynaRosterState) { 0 };
  if (t == NULL)
    return;
  previous = myna_service_enter (roster);
  t->item_state (item, state);
  myna_service_leave (previous);
}

/* Returns: (transfer full) (nullable) */
static inline MynaStanza *
myna_roster_item_request (MynaService *roster, const MynaStanza *item)
{
  const MynaRosterService *t = myna_roster_table (roster);
  MynaStanza *request;
  MynaModule *previous;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (roster);
  request = t->item_request (item);
  myna_service_leave (previous);
  return request;
}

/* The state of @contact in @user@host's roster: FALSE (and @state all
 * zero) when the roster has no such item. */
static inline gboolean
myna_roster_get_state (MynaService *roster, MynaHost *host, const char *user,
                       const char *contact, MynaRosterState *state)
{
  MynaStanza *item = myna_roster_get (roster, host, user, contact);

  *state = (MynaRosterState) { 0 };
  if (item == NULL)
    return FALSE;
  myna_roster_item_state (roster, item, state);
  myna_stanza_unref (item);
  return TRUE;
}

G_END_DECLS
