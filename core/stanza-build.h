/* stanza-build.h: the va_list form of myna_stanza_build_result(), for
 * myna_call_reply(), and the reference count test of the fan-out
 * (core/delivery.c).  Internal: not exported. */
#pragma once

#include <myna/stanza.h>
#include <stdarg.h>

MynaStanza *myna_stanza_build_result_valist (const MynaStanza *iq,
                                             const char *payload_format,
                                             va_list args) G_GNUC_PRINTF (2, 0);

/* Whether a reference other than the caller's holds @stanza (a handler
 * kept it): the fan-out then leaves it to them and works on a new one. */
gboolean    myna_stanza_is_shared (const MynaStanza *stanza);
