/* disco.c: service discovery of the service and its rooms (XEP-0030,
 * XEP-0059, XEP-0128 muc#roominfo), self-ping (XEP-0410), and the
 * administration commands (mynactl muc, /api/v1/muc).
 * Stub: filled in by the disco work. */
#include "muc.h"

void
muc_disco_info_iq (Muc *muc, MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented", NULL);
}

void
muc_disco_items_iq (Muc *muc, MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented", NULL);
}

gboolean
muc_disco_ping_iq (MucRoom *room, const char *nick, MynaCall *call, MynaStanza *iq)
{
  return FALSE;
}

gboolean
muc_disco_init (Muc *muc, GError **error)
{
  return TRUE;
}

void
muc_disco_fini (Muc *muc)
{
}
