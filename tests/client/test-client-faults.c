#include <myna/client/myna-client.h>
int main (void) { return 77; }
