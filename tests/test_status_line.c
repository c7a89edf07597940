/*
 * test_status_line.c — a failure message is one line, even when it quotes
 * names or values from a hostile file (the fuzz targets check the same on
 * every input; these are the cases they found).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "shared/manifest.h"
#include "shared/status.h"

Test(status_line, control_characters_become_question_marks)
{
    status st = FAIL(STATUS_FORMAT, "x.json: name '%s'", "a\nb\r\tc\x7f");
    cr_assert_eq(st, STATUS_FORMAT);
    cr_assert_str_eq(status_msg(), "x.json: name 'a?b??c?'");
    FAIL(STATUS_FORMAT, "caf\xc3\xa9");             /* UTF-8 stays as it is */
    cr_assert_str_eq(status_msg(), "caf\xc3\xa9");
}

Test(status_line, manifest_with_a_newline_in_a_value_gives_one_line)
{
    const char *texts[] = {
        "{\"format\": \"deeper-dataset\", \"format_version\": 1, \"label_offset\": 0,"
        " \"classes\": [{\"id\": 0, \"name\": \"a\"}], \"num_labels\": 1, \"storage\": \"jpeg\\nraw\"}",
        "{\"format\": \"deeper\\ndataset\"}",
        "{\"format\": \"deeper-dataset\", \"format_version\": 1, \"label_offset\": 0,"
        " \"classes\": [{\"id\": 0, \"name\": \"a\\n\"}, {\"id\": 1, \"name\": \"a\\n\"}]}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct manifest *m = NULL;
        status st = manifest_from_json(texts[i], "bad.json", &m);
        cr_assert_neq(st, STATUS_OK, "case %zu accepted", i);
        cr_assert_null(strchr(status_msg(), '\n'), "case %zu: two lines: %s", i, status_msg());
        cr_assert_not_null(strstr(status_msg(), "bad.json"), "case %zu: %s", i, status_msg());
        manifest_free(&m);
    }
}
