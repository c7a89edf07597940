/*
 * pyref_util.h — tests that compare against a PyTorch reference script
 * (the scripts under scripts/ref, run at test time by Debian's /usr/bin/python3).
 *
 * pyref_need("torch torchvision") skips the calling test, with the reason,
 * only when the reference genuinely cannot be made here: /usr/bin/python3
 * is absent or one of the modules is not installed (checked with
 * importlib.util.find_spec, which does not import them).  Anything else,
 * a probe that cannot run or a reference script that fails, is a failure
 * of the test, never a skip.
 */
#ifndef DEEPER_TESTS_PYREF_UTIL_H
#define DEEPER_TESTS_PYREF_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYREF_PYTHON "/usr/bin/python3"

static inline void pyref_need(const char *modules)
{
    if (access(PYREF_PYTHON, X_OK) != 0)
        cr_skip_test(PYREF_PYTHON " is not installed (scripts/setup installs python3-torch)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             PYREF_PYTHON " -c 'import importlib.util, sys\n"
             "m = [n for n in sys.argv[1].split() if importlib.util.find_spec(n) is None]\n"
             "print(\" \".join(m)); sys.exit(3 if m else 0)' '%s'",
             modules);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", PYREF_PYTHON);
    char missing[256] = "";
    if (!fgets(missing, sizeof missing, p)) missing[0] = 0;
    int rc = pclose(p);
    for (char *c = missing; *c; c++) if (*c == '\n') *c = 0;
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 3)
        cr_skip_test(PYREF_PYTHON " has no Python module %s (scripts/setup installs python3-torch, "
                     "python3-torchvision)", missing);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "module probe of %s failed (status %d)", PYREF_PYTHON, rc);
}

#endif
