/* stanza-build.h: the va_list form of myna_stanza_build_result(), for
 * myna_call_reply() (core/delivery.c).  Internal: not exported. */
#pragma once

#include <myna/stanza.h>
#include <stdarg.h>

MynaStanza *myna_stanza_build_result_valist (const MynaStanza *iq,
                                             const char *payload_format,
                                             va_list args) G_GNUC_PRINTF (2, 0);
