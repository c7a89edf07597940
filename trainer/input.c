/*
 * input.c — the dispatcher and the local augment workers of a run (see
 * input.h).
 */
#include "trainer/input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/dispatch_proto.h"
#include "shared/log.h"

status input_dispatcher_config(const struct input_spec *s, const char *endpoints, struct dispatcher_config *dc)
{
    *dc = dispatcher_config_default();
    dc->endpoints = endpoints;
    dc->eval = s->eval;
    dc->subset = s->subset;
    dc->batch_size = (uint32_t)s->batch_size;
    dc->image_size = (uint32_t)s->image_size;
    dc->channels = (uint32_t)s->channels;
    dc->seed = s->seed;
    dc->examples = s->examples;
    dc->start_batch = s->start_batch;
    dc->end_batch = s->end_batch;
    dc->num_classes = s->num_classes;
    dc->id_limit = s->id_limit;
    dc->curve = s->listen ? s->curve : NULL;
    augment_flags_tristate(s->augment, &dc->flip, &dc->color, &dc->crop);
    if (s->worker_timeout > 0) dc->worker_timeout_ms = (int)(s->worker_timeout * 1000);
    if (s->max_connections < 0 || (s->max_connections > 0 && s->max_connections <= s->num_workers))
        return FAIL(STATUS_USAGE, "--max_connections %d: must exceed the %d local workers (0: the default, %d)",
                    s->max_connections, s->num_workers, dc->max_connections);
    if (s->max_connections > 0) dc->max_connections = s->max_connections;
    if (s->window < 0 || s->window > 65536 || (s->window == 0 && !s->eval))
        return FAIL(STATUS_USAGE, "--input_queue_memory_factor %d: must be in [1, 65536] (batches)", s->window);
    if (s->window > 0) {   /* the credit window; splits no longer than it */
        dc->window = s->window;
        if (dc->split_batches > dc->window) dc->split_batches = dc->window;
    }
    dc->alloc = s->alloc;
    dc->dump_ids = getenv("DEEPER_DUMP_IDS");
    return dproto_dataset_identity(s->data_dir, &dc->manifest_crc, &dc->manifest_len, &dc->records);
}

/* --name local-I for local worker I */
static const char *const *local_name(int i, void *ctx)
{
    struct input *in = ctx;
    snprintf(in->name, sizeof in->name, "local-%d", i);
    in->argv[0] = "--name";
    in->argv[1] = in->name;
    in->argv[2] = NULL;
    return in->argv;
}

status input_open(struct input *in, const struct input_spec *s)
{
    memset(in, 0, sizeof *in);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "deeper-%s", s->program);
    TRY(dispatcher_ipc_dir_make(prefix, in->ipc_dir, sizeof in->ipc_dir, in->ipc_ep, sizeof in->ipc_ep));
    snprintf(in->endpoints, sizeof in->endpoints, "%s%s%s", in->ipc_ep, s->listen ? "," : "",
             s->listen ? s->listen : "");
    struct dispatcher_config dc;
    TRY(input_dispatcher_config(s, in->endpoints, &dc));
    TRY(dispatcher_new(&dc, &in->disp));
    if (s->announce) {
        double kb = (double)dproto_batch_size(dc.batch_size, dc.image_size, dc.image_size, dc.channels) / 1e3;
        log_info("input: at most %d batches of %.1f %s held ahead (--input_queue_memory_factor), splits of %d batches",
                 dispatcher_window(in->disp), kb >= 1e3 ? kb / 1e3 : kb, kb >= 1e3 ? "MB" : "kB",
                 dc.split_batches);
    }
    if (s->num_workers > 0) {
        TRY(workers_sibling_exe("augment", &in->exe));
        /* with CURVE the dispatcher's socket takes only keyed peers: local workers hold the consumer's own pair */
        const char *common[] = { "--data_dir", s->data_dir, "--quiet", NULL, NULL, NULL, NULL, NULL };
        if (dc.curve && curve_opts_enabled(dc.curve)) {
            common[3] = "--curve_secret_key"; common[4] = dc.curve->secret_key;
            common[5] = "--curve_server_key"; common[6] = dc.curve->secret_key;
        }
        TRY(workers_start_dispatched(&in->workers, in->exe, common, s->num_workers, in->ipc_ep, local_name, in));
        if (s->announce) log_info("started %d augment workers on %s", s->num_workers, in->ipc_ep);
    }
    if (s->listen) log_info("waiting for remote augment workers on %s", s->listen);
    return STATUS_OK;
}

int input_reap(struct input *in, int *dead)
{
    if (!in->workers) return 0;
    int nd = workers_poll(in->workers, dead, NULL);
    for (int k = 0; k < nd; k++) {
        char name[32];
        snprintf(name, sizeof name, "local-%d", dead[k]);
        dispatcher_forget(in->disp, name);
    }
    return nd;
}

void input_close(struct input *in)
{
    workers_stop(&in->workers);
    dispatcher_free(&in->disp);
    if (in->ipc_dir[0]) dispatcher_ipc_dir_remove(in->ipc_dir);
    in->ipc_dir[0] = 0;
    free(in->exe);
    in->exe = NULL;
}
