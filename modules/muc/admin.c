/* admin.c: roles and affiliations, room configuration, registration,
 * invitations and voice requests (XEP-0045 §7.8, §7.10, §7.13, §8–§10).
 * Stub: filled in by the admin work. */
#include "muc.h"

MucRole
muc_admin_default_role (MucRoom *room, MucAffiliation affiliation)
{
  if (affiliation >= MUC_AFFIL_ADMIN)
    return MUC_ROLE_MODERATOR;
  if (room->config.moderated && affiliation < MUC_AFFIL_MEMBER)
    return MUC_ROLE_VISITOR;
  return MUC_ROLE_PARTICIPANT;
}

void
muc_admin_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented", NULL);
}

void
muc_owner_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented", NULL);
}

void
muc_register_iq (MucRoom *room, MynaCall *call, MynaStanza *iq)
{
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "feature-not-implemented", NULL);
}

gboolean
muc_admin_message (MucRoom *room, MynaCall *call, MynaStanza *message)
{
  return FALSE;
}

void
muc_admin_set_role (MucOccupant *occ, MucRole role, const char *actor_nick,
                    const char *reason)
{
}

void
muc_admin_room_free (MucRoom *room)
{
}
