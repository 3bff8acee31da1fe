/* validate.c: being written */
