/* iqtest.h: what the iqtest module records of its IQ requests, shared with
 * the test that hands it the log (g_dataset on the server, key
 * IQTEST_LOG) and reads it, also after the module is gone. */
#pragma once

#define IQTEST_NS  "urn:myna:test:iq"
#define IQTEST_LOG "iqtest-log"

typedef struct {
  int  sent;             /* myna_module_send_iq calls */
  int  results;          /* callbacks with a result */
  int  stanza_errors;    /* callbacks with MYNA_MODULE_ERROR_STANZA */
  int  timeouts;         /* callbacks with MYNA_MODULE_ERROR_TIMEOUT */
  int  failed;           /* callbacks with MYNA_MODULE_ERROR_FAILED (refused) */
  int  destroys;         /* destroy notifies run */
  int  bad_context;      /* callbacks given another instance than the sender */
  char condition[64];    /* the last error's message */
  char reply_from[128];  /* the last reply's from */
  gint64 last_outcome_us; /* g_get_monotonic_time () at the last callback */
} IqTestLog;
