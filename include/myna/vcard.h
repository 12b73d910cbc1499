/* vcard.h: the vCard service ("vcard/1"), provided by the vcard module
 * (XEP-0054, vcard-temp), for modules that read or write an account's
 * vCard or follow its changes: avatar conversion (XEP-0398: the PHOTO
 * <-> the PEP avatar nodes), or a third party's.  Use it as
 * <myna/roster.h> says for the roster.
 *
 * Once a vCard set is durable (a client's or one through this service),
 * the vcard module fires on the account's host
 *
 *   MYNA_EVENT_VCARD_UPDATED  <updated xmlns='urn:myna:vcard:0'
 *                               owner='BARE' origin='TAG'?><vCard …/></updated>
 *
 * with myna_call_new_for (host, owner's bare JID); `origin` is the tag a
 * module passed to myna_vcard_set (absent for a client's set), so that a
 * mirror skips its own writes.  Callbacks run from the main loop in the
 * vcard module's context. */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

#define MYNA_VCARD_SERVICE      "vcard"
#define MYNA_NS_VCARD_EVENTS    "urn:myna:vcard:0"
/* Fired after an account's vCard was stored. */
#define MYNA_EVENT_VCARD_UPDATED "vcard/updated"

/* Reports how a set ended: @error NULL once durable. */
typedef void (*MynaVcardDone) (const GError *error, gpointer user_data);

/* The table of vcard/1; fields are only ever added at the end. */
typedef struct {
  gsize        size;
  /* Account @local's vCard on @host (as a set sent it, writes in flight
   * included), or NULL (@error unset) when none was stored.
   * Returns: (transfer full) (nullable) */
  MynaStanza *(*get) (MynaHost *host, const char *local, GError **error);
  /* Stores @vcard (a <vCard xmlns='vcard-temp'/>, copied) as the
   * account's.  FALSE with @error when refused (larger than the module's
   * max_size): then @done does not run.  @destroy (nullable) runs in
   * every case. */
  gboolean    (*set) (MynaHost *host, const char *local, MynaStanza *vcard,
                      const char *origin, MynaVcardDone done, gpointer user_data,
                      GDestroyNotify destroy, GError **error);
} MynaVcardService;

/* Returns: (transfer full) (nullable) */
static inline MynaStanza *
myna_vcard_get (MynaService *vcard, MynaHost *host, const char *local, GError **error)
{
  const MynaVcardService *t = vcard != NULL
                                ? (const MynaVcardService *) myna_service_get_table (vcard) : NULL;
  MynaModule *previous;
  MynaStanza *out;

  if (t == NULL)
    return NULL;
  previous = myna_service_enter (vcard);
  out = t->get (host, local, error);
  myna_service_leave (previous);
  return out;
}

static inline gboolean
myna_vcard_set (MynaService *vcard, MynaHost *host, const char *local, MynaStanza *card,
                const char *origin, MynaVcardDone done, gpointer user_data,
                GDestroyNotify destroy, GError **error)
{
  const MynaVcardService *t = vcard != NULL
                                ? (const MynaVcardService *) myna_service_get_table (vcard) : NULL;
  MynaModule *previous;
  gboolean ok;

  if (t == NULL)
    {
      if (destroy != NULL)
        destroy (user_data);
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_DEPENDENCY,
                           "no module provides vcard/1");
      return FALSE;
    }
  previous = myna_service_enter (vcard);
  ok = t->set (host, local, card, origin, done, user_data, destroy, error);
  myna_service_leave (previous);
  return ok;
}

G_END_DECLS
