/*
 * test_train_defaults.c — per-model defaults, where each value comes from,
 * and the distortion switches shared by augment, train and eval.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "shared/augment_flags.h"
#include "shared/flags.h"
#include "trainer/model.h"
#include "trainer/train.h"

Test(train_defaults, model_defaults_fill_what_is_not_given)
{
    struct train_config c = train_config_default();
    train_config_apply_model(&c, model_find("nielsennet"));
    cr_assert_float_eq(c.initial_learning_rate, nielsennet_defaults.initial_learning_rate, 1e-9);
    cr_assert_eq(c.batch_size, 64);
    cr_assert_eq(c.image_size, 28);
    cr_assert_float_eq(c.dropout_keep_prob, 0.7f, 1e-6);

    struct train_config t = train_config_default();
    train_config_apply_model(&t, model_find("inception_v3"));   /* TF's values */
    cr_assert_float_eq(t.initial_learning_rate, 0.1f, 1e-9);
    cr_assert_float_eq(t.num_epochs_per_decay, 30.0f, 1e-6);
    cr_assert_float_eq(t.learning_rate_decay_factor, 0.16f, 1e-6);
    cr_assert_eq(t.batch_size, 32);
    cr_assert_eq(t.image_size, 299);
    cr_assert_float_eq(t.weight_decay, 4e-5f, 1e-12);
    cr_assert_float_eq(t.dropout_keep_prob, 0.8f, 1e-6);
    cr_assert_float_eq(t.label_smoothing, 0.1f, 1e-6);
    cr_assert_str_eq(train_config_source(&t, TRAIN_GIVEN_LR), "model default");
}

Test(train_defaults, a_flag_wins_even_when_out_of_range)
{
    struct train_config c = train_config_default();
    c.initial_learning_rate = 0.003f;
    c.given = TRAIN_GIVEN_LR | TRAIN_GIVEN_SMOOTHING;
    c.label_smoothing = -0.5f;   /* given: kept for the range check to name it */
    train_config_apply_model(&c, model_find("nielsennet"));
    cr_assert_float_eq(c.initial_learning_rate, 0.003f, 1e-9);
    cr_assert_float_eq(c.label_smoothing, -0.5f, 1e-9);
    cr_assert_str_eq(train_config_source(&c, TRAIN_GIVEN_LR), "flag");
    cr_assert_str_eq(train_config_source(&c, TRAIN_GIVEN_BATCH), "model default");
}

Test(augment_flags, given_switches_are_passed_on_word_for_word)
{
    struct augment_flags a = augment_flags_none();
    struct flag t[AUGMENT_FLAGS_N];
    augment_flags_table(&a, t);
    const struct flags_spec spec = { "x", "", "", t, AUGMENT_FLAGS_N, 0, 0 };
    char *argv[] = { "x", "--no_crop", "--color", "--noflip", NULL };
    cr_assert_eq(flags_parse(&spec, 4, argv, NULL, NULL), STATUS_OK);
    const char *out[4] = { 0 };
    int n = augment_flags_argv(&a, out);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(out[0], "--no_flip");
    cr_assert_str_eq(out[1], "--color");
    cr_assert_str_eq(out[2], "--no_crop");

    struct augment_flags none = augment_flags_none();
    cr_assert_eq(augment_flags_argv(&none, out), 0, "nothing given: everything from the profile");
}

Test(augment_flags, contradiction_is_one_usage_error)
{
    struct augment_flags a = augment_flags_none();
    struct flag t[AUGMENT_FLAGS_N];
    augment_flags_table(&a, t);
    const struct flags_spec spec = { "x", "", "", t, AUGMENT_FLAGS_N, 0, 0 };
    char *argv[] = { "x", "--crop", "--no_crop", NULL };
    cr_assert_eq(flags_parse(&spec, 3, argv, NULL, NULL), STATUS_OK);
    cr_assert_eq(augment_flags_check(&a), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "--crop contradicts --no_crop"), "%s", status_msg());
}

Test(augment_flags, help_says_the_profile_decides)
{
    struct augment_flags a = augment_flags_none();
    struct flag t[AUGMENT_FLAGS_N];
    augment_flags_table(&a, t);
    const struct flags_spec spec = { "x", "", "", t, AUGMENT_FLAGS_N, 0, 0 };
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    flags_print_help(&spec, f);
    fclose(f);
    cr_assert(strstr(buf, "--flip") && strstr(buf, "(default: from the dataset's profile)"), "%s", buf);
    cr_assert(!strstr(buf, "default: true") && !strstr(buf, "default: false"), "%s", buf);
}
