/* history.c: discussion history on join (XEP-0045 §7.2.13), the room
 * archive (XEP-0313 through archive/1) and stanza-ids (XEP-0359).
 * Stub: filled in by the history work. */
#include "muc.h"

void
muc_history_record (MucRoom *room, MucOccupant *sender, MynaStanza *message)
{
}

void
muc_history_send (MucRoom *room, MucOccupant *occ, MynaJid *to, MynaStanza *history)
{
}

void
muc_history_mam_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented", NULL);
}

void
muc_history_room_loaded (MucRoom *room)
{
}

void
muc_history_room_destroyed (MucRoom *room)
{
}

void
muc_history_room_free (MucRoom *room)
{
}

gboolean
muc_history_init (Muc *muc, GError **error)
{
  return TRUE;
}

void
muc_history_fini (Muc *muc)
{
}
