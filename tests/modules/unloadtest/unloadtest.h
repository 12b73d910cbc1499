/* unloadtest.h: what the unloadtest module counts, shared with the test
 * that hands it the counters (g_dataset on the server, key
 * UNLOADTEST_COUNTERS) and reads them after the module is gone. */
#pragma once

#define UNLOADTEST_NS       "urn:myna:test:unload"
#define UNLOADTEST_COUNTERS "unloadtest-counters"

typedef struct {
  int loads;
  int unloads;
  int session_data_set;     /* per-session states made */
  int session_data_freed;   /* their destroy notifies run */
  int session_timer_fired;  /* MynaTimers held by the session states */
  int stray_timer_fired;    /* a MynaTimer the module never stops itself */
  int module_timer_fired;   /* myna_module_add_timer */
  int callbacks;            /* storage and account callbacks run */
  int callback_destroys;    /* their destroy notifies */
  int state_freed;          /* the instance's state (myna_module_set_data) */
  int fail_loads;           /* loads to refuse (each refusal counts it down) */
} UnloadTestCounters;
