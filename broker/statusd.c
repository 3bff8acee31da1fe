/* statusd.c: being written */
