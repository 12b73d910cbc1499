/* sm.h: what the stream management module (XEP-0198, module `sm`) tells
 * other modules.
 *
 * The sm module keeps, per session that enabled stream management, every
 * stanza written to the client until the client acknowledges it (<a h/>);
 * a session whose connection drops is hibernated (myna_session_is_hibernated)
 * until the client resumes it or `resume_timeout` ends.  Modules that
 * need to know a stanza reached the client (push: a notification is
 * "delivered") hook MYNA_EVENT_SM_ACKED. */
#pragma once

#include <myna/module.h>

G_BEGIN_DECLS

/* Fired on the session's host for each stanza the client has just
 * acknowledged, in the order it was sent: the call's session is the
 * client's, the stanza the one acknowledged (borrowed).  The handlers'
 * answers are ignored. */
#define MYNA_EVENT_SM_ACKED "sm/acked"

G_END_DECLS
