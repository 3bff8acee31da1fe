/*
 * unit_files.h: files the unit tests write (configs, keys, rosters).
 */
#ifndef CK_UNIT_FILES_H
#define CK_UNIT_FILES_H

#include <sys/types.h>

/* Write text to path and chmod it to mode; fails the test on error. */
void ck_test_write_file(const char *path, const char *text, mode_t mode);

#endif
