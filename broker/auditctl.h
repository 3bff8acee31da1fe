/*
 * auditctl.h: `chakongctl audit verify|export` (see auditctl.c).
 */
#ifndef CK_AUDITCTL_H
#define CK_AUDITCTL_H

/* argv[0] is "audit"; returns the exit code. */
int ck_auditctl_main(int argc, char **argv);

#endif
