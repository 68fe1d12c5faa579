/* tool.h: what every tool's main does first and last: name itself, clean up
 * on signals, make usage errors exit 2; close stdout checked, report once. */
#ifndef ENVSYNC_TOOL_H
#define ENVSYNC_TOOL_H

void es_tool_start(const char *argv0);
/* Finish with exit status rc: a failed stdout turns success into trouble;
 * any status of 2 or more prints the recorded error. */
int es_tool_exit(int rc);

#endif
