/* presence.h: the presence service ("presence/1"), provided by the
 * presence module (RFC 6121 §4), for modules that need a session's
 * current presence: the roster (presence sent to a contact just
 * approved), blocking (presence sent to a contact unblocked), or a third
 * party's.  Use it as <myna/roster.h> says for the roster; optional (left
 * out of `.uses`), the wrapper answers NULL while no presence module is
 * loaded on the host. */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_PRESENCE_SERVICE "presence"

/* The table of presence/1; fields are only ever added at the end. */
typedef struct {
  gsize        size;
  /* The last available presence @session sent (as the client sent it,
   * no `from`), or NULL while it is not available.
   * Returns: (transfer none) (nullable): valid until the session's next
   * presence; copy it to keep it */
  MynaStanza *(*get_last) (MynaSession *session);
} MynaPresenceService;

/* Returns: (transfer none) (nullable) */
static inline MynaStanza *
myna_presence_get_last (MynaService *presence, MynaSession *session)
{
  const MynaPresenceService *t = (const MynaPresenceService *) myna_service_get_table (presence);
  MynaStanza *last;
  MynaModule *previous;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (presence);
  last = t->get_last (session);
  myna_service_leave (previous);
  return last;
}

G_END_DECLS
