/* tool.c: the start and the end shared by every tool's main. */
#include "config.h"
#include "tool.h"
#include "io.h"
#include "util.h"

#include <argp.h>

void es_tool_start(const char *argv0)
{
	es_set_program(argv0);
	es_install_signal_cleanup();
	argp_err_exit_status = ES_TROUBLE;
}

int es_tool_exit(int rc)
{
	if (rc != ES_TROUBLE && es_close_stdout() < 0)
		rc = ES_TROUBLE;
	if (rc >= ES_TROUBLE)
		es_report();
	return rc;
}
