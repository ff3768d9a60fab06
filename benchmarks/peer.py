#!/usr/bin/env python3
"""Compare `rgemma bench` with Hugging Face transformers' RecurrentGemma in PyTorch.

The script loads one checkpoint in both implementations, compares their logits
on a prompt shorter than the attention window, then measures the same shapes in
each: forward at batch 4 x 512 tokens, a training step with AdamW at
batch 4 x 256, and greedy decoding at batch 1. It prints both figures and their
ratio. See benchmarks/README.md for the set-up.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings


def option_value(argv, option):
    """Return the value given to option (as "--opt=V" or "--opt V") on the command line, or None.

    Options that must act before torch loads are read with this, ahead of argparse.
    """
    for i, arg in enumerate(argv):
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
    return None


# OpenMP reads OMP_WAIT_POLICY when torch loads, so --omp-wait-policy is
# applied before the import. Without it, torch runs with the environment's
# value or libgomp's default, in which idle threads spin for a while and then
# sleep.
OMP_WAIT_POLICY_OPTION = option_value(sys.argv, "--omp-wait-policy")
if OMP_WAIT_POLICY_OPTION in ("active", "passive"):
    os.environ["OMP_WAIT_POLICY"] = OMP_WAIT_POLICY_OPTION.upper()

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def malloc_tunables():
    """Return the GLIBC_TUNABLES value that `rgemma` runs under, read from rgemma/malloc.go."""
    import re
    with open(os.path.join(REPO, "rgemma", "malloc.go")) as f:
        match = re.search(r'const MallocTunables = "([^"]+)"', f.read())
    if not match:
        sys.exit("peer.py: MallocTunables not found in rgemma/malloc.go")
    return match.group(1)


# glibc reads GLIBC_TUNABLES only at start-up, so --peer-malloc-tuning re-runs
# this script with it before torch allocates anything.
if "--peer-malloc-tuning" in sys.argv and "GLIBC_TUNABLES" not in os.environ:
    os.execve(sys.executable, [sys.executable] + sys.argv,
              dict(os.environ, GLIBC_TUNABLES=malloc_tunables()))

import torch
import torch.nn.functional as F
import transformers

# transformers 4.40 calls nn.functional.tanh, which torch reports as deprecated on every call.
warnings.filterwarnings("ignore", message="nn.functional.tanh is deprecated")


def openblas_core():
    """Return the kernel family chosen by the OpenBLAS that torch loaded, or None without OpenBLAS."""
    import ctypes
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "libopenblas" in line})
    for path in paths:
        try:
            corename = ctypes.CDLL(path).openblas_get_corename
        except (OSError, AttributeError):
            continue
        corename.restype = ctypes.c_char_p
        return corename().decode()
    return None


def cpu_flags():
    """Return the feature flags of the first processor in /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# OpenBLAS uses old SSE3 kernels on a processor model newer than its release.
# On a Xeon of model 207, OpenBLAS 0.3.21 (Debian 12) chose "Prescott" and ran
# the model's matrix products at about 65 GFLOP/s instead of 290 with its
# AVX-512 kernels. A user of torch would fix that, so the script restarts
# itself with OPENBLAS_CORETYPE set to the newest kernel family the processor
# supports, unless the variable is already set or --openblas-coretype is keep.
OLD_OPENBLAS_CORES = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                      "Coppermine", "Northwood", "Banias", "Sandybridge", "Barcelona", "Opteron"}


def best_openblas_core(flags):
    """Return the newest OpenBLAS kernel family for these CPU flags, or None."""
    if "avx512f" in flags:
        return "SkylakeX"
    if "avx2" in flags:
        return "Haswell"
    return None


WANTS_HELP = "-h" in sys.argv or "--help" in sys.argv
KEEP_OPENBLAS_CORE = option_value(sys.argv, "--openblas-coretype") == "keep"
if "OPENBLAS_CORETYPE" not in os.environ and not KEEP_OPENBLAS_CORE and not WANTS_HELP:
    chosen, best = openblas_core(), best_openblas_core(cpu_flags())
    if chosen in OLD_OPENBLAS_CORES and best:
        print(f"[peer] OpenBLAS chose {chosen} kernels on a CPU that has {best} ones; "
              f"restarting with OPENBLAS_CORETYPE={best}", file=sys.stderr, flush=True)
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, OPENBLAS_CORETYPE=best))
from transformers import RecurrentGemmaForCausalLM

TARGET_RATIO = 2.0


def log(msg):
    print(f"[peer] {msg}", file=sys.stderr, flush=True)


def plain_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """Softmax attention written with matmul and softmax.

    torch releases before 2.0 (Debian 12 ships 1.13) lack
    F.scaled_dot_product_attention, which transformers' RecurrentGemma calls.
    This function replaces it, with the same arguments and result.
    """
    if scale is None:
        scale = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale
    if is_causal:
        q_len, k_len = scores.shape[-2], scores.shape[-1]
        keep = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    probs = torch.softmax(scores, dim=-1)
    if dropout_p > 0:
        probs = F.dropout(probs, p=dropout_p)
    return torch.matmul(probs, value)


SDPA_STAND_IN = not hasattr(F, "scaled_dot_product_attention")
if SDPA_STAND_IN:
    F.scaled_dot_product_attention = plain_attention


def shown(cmd):
    """Return cmd as one line for the log, with long arguments (token id lists) cut short."""
    return " ".join(arg if len(arg) <= 60 else arg[:40] + f"...({len(arg)} chars)" for arg in cmd)


def run(cmd, capture=False):
    log("running: " + shown(cmd))
    result = subprocess.run(cmd, cwd=REPO, text=True, stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        sys.exit(f"command failed with exit code {result.returncode}: {' '.join(cmd)}")
    return result.stdout


def rgemma_cmd(args):
    """Return the rgemma command line: a built binary (--rgemma) or `go run`."""
    return [args.rgemma] if args.rgemma else ["go", "run", "./cmd/rgemma"]


def rounds_note(args):
    """Return the order of the measurements, for the report's machine line."""
    if args.pair_figures:
        return (f"; {args.rounds} round(s), one figure at a time, ours and the peer back to back, "
                "the side that goes first alternating from round to round")
    if args.rounds > 1:
        return f"; {args.rounds} rounds, ours then the peer in each"
    return ""


def ours_json(args, extra):
    cmd = rgemma_cmd(args) + ["bench", "-model", args.model, "-format", "json"] + extra
    if args.backend:
        cmd += ["-backend", args.backend]
    out = run(cmd, capture=True)
    return json.loads(out.strip().splitlines()[-1])


def timed(fn, reps, warmup):
    """Run fn 1 + warmup times untimed, then reps timed times, and return the seconds of each timed run.

    `rgemma bench -warmup N` also makes 1 + N untimed calls: one that compiles and N that warm up.
    """
    for _ in range(1 + warmup):
        fn()
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def random_ids(rng, batch, length, vocab):
    return torch.tensor([[rng.randrange(vocab) for _ in range(length)] for _ in range(batch)], dtype=torch.long)


def clear_recurrent_state(model):
    """Drop the RG-LRU state that transformers 4.40 keeps between calls.

    Its RG-LRU layers start each call from the state the previous call left,
    even with use_cache=False. A sequence that starts at position 0 multiplies
    that state by 0, so the values do not change, but after a training step the
    state still belongs to that step's autograd graph and the next backward pass
    fails with "Trying to backward through the graph a second time".
    """
    for layer in model.model.layers:
        rg_lru = getattr(layer.temporal_block, "rg_lru", None)
        if rg_lru is not None:
            rg_lru.recurrent_states = None


def peer_forward(model, ids, reps, warmup):
    model.eval()

    def step():
        clear_recurrent_state(model)
        with torch.no_grad():
            model(input_ids=ids, use_cache=False).logits.sum().item()

    seconds = timed(step, reps, warmup)
    return ids.numel() / statistics.median(seconds), seconds


def peer_train(model, ids, reps, warmup):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        clear_recurrent_state(model)
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())

    seconds = timed(step, reps, warmup)
    model.eval()
    return ids.numel() / statistics.median(seconds), seconds, losses


def peer_decode(model, prompt, steps, reps, warmup):
    """Time greedy decoding with the model's cache, one token per row per call."""
    model.eval()
    state = {"pos": 0, "next": None}

    def feed(ids):
        n = ids.shape[1]
        cache_position = torch.arange(state["pos"], state["pos"] + n)
        logits = model(input_ids=ids, cache_position=cache_position, use_cache=True).logits
        state["pos"] += n
        state["next"] = logits[:, -1].argmax(-1, keepdim=True)

    seconds = []
    with torch.no_grad():
        feed(prompt)
        # As in rgemma bench: one single step, then warmup untimed repetitions.
        for _ in range(1 + warmup * steps):
            feed(state["next"])
        for _ in range(reps):
            start = time.perf_counter()
            for _ in range(steps):
                feed(state["next"])
            seconds.append(time.perf_counter() - start)
    return prompt.shape[0] * steps / statistics.median(seconds), seconds


def logits_check_ids(args, vocab, window):
    """Return the prompt of the logits check: fewer tokens than the window."""
    length = min(args.logits_tokens, window - 1)
    rng = random.Random(args.seed + 1)
    return [rng.randrange(vocab) for _ in range(length)]


def decode_check_ids(args, vocab):
    """Return the row of the cached decode check."""
    rng = random.Random(args.seed + 2)
    return [rng.randrange(vocab) for _ in range(args.decode_check_tokens)]


def ours_logits(args, ids):
    """Return our forward-pass and decoder logits of one row, from `rgemma bench -only logits`."""
    return ours_json(args, ["-only", "logits", "-logits-ids", ",".join(map(str, ids))])["logits"]


def logits_check(model, vocab, ids, ours):
    length = len(ids)
    model.eval()
    clear_recurrent_state(model)
    with torch.no_grad():
        peer = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
    result = {"tokens": length}
    for name in ("forward", "decode"):
        diff = (torch.tensor(ours[name]) - peer).abs()
        result[f"max_abs_diff_{name}"] = diff.max().item()
        result[f"worst_{name}"] = list(divmod(int(diff.argmax()), vocab))
    result["max_abs_logit"] = peer.abs().max().item()
    result["argmax_agree"] = float((torch.tensor(ours["forward"]).argmax(-1) == peer.argmax(-1)).float().mean())
    return result


def decode_check(model, window, ids, ours_decode):
    """Compare the peer's cached decoding, one token per call, with our decoder.

    The row is longer than the attention window, so it also shows how each
    implementation limits attention once the window is full.
    """
    ours = torch.tensor(ours_decode)
    model.eval()
    clear_recurrent_state(model)
    with torch.no_grad():
        # transformers sets up its cache only in a call with several tokens,
        # so the first call feeds two.
        first = model(input_ids=torch.tensor([ids[:2]]), cache_position=torch.arange(2), use_cache=True).logits[0]
        rows = [first[0], first[1]]
        for pos in range(2, len(ids)):
            step = model(input_ids=torch.tensor([[ids[pos]]]), cache_position=torch.tensor([pos]), use_cache=True)
            rows.append(step.logits[0, -1])
    diff = (torch.stack(rows) - ours).abs().max(-1).values.tolist()
    over = [pos for pos, d in enumerate(diff) if d > 1e-3]
    return {
        "tokens": len(ids),
        "window": window,
        "max_abs_diff_before": max(diff[: window - 1]),
        "max_abs_diff_from": max(diff[window - 1:], default=0.0),
        "first_position_over_1e-3": over[0] if over else None,
    }


class HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Help formatter that shows a default only when there is one (not None, empty or False)."""

    def _get_help_string(self, action):
        if action.default in (None, "", False):
            return action.help
        return super()._get_help_string(action)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=HelpWithDefaults)
    parser.add_argument("--model", help="checkpoint directory (without it: `rgemma init -preset PRESET` into a temporary folder)")
    parser.add_argument("--preset", default="small", help="preset for the checkpoint made without --model")
    parser.add_argument("--seed", type=int, default=1, help="seed of the weights made without --model and of the inputs")
    parser.add_argument("--backend", default="", help="rgemma -backend value (empty: rgemma's default, XLA when installed)")
    parser.add_argument("--rgemma", default="", help="path of a built rgemma binary (empty: go run ./cmd/rgemma)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per figure; medians are compared")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch", type=int, default=4, help="rows of the forward pass and of the training step")
    parser.add_argument("--seq", type=int, default=512, help="tokens per row of the forward pass")
    parser.add_argument("--train-seq", type=int, default=256, help="tokens per row of the training step")
    parser.add_argument("--prompt", type=int, default=16, help="prompt tokens before decoding")
    parser.add_argument("--decode-steps", type=int, default=64, help="timed decode steps per repetition")
    parser.add_argument("--logits-tokens", type=int, default=100, help="prompt length of the logits check (kept below the attention window)")
    parser.add_argument("--decode-check-tokens", type=int, default=300,
                        help="length of the row fed one token at a time through the peer's cache and compared with our decoder; 0 skips it")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls per figure after the first one, on both sides (rgemma bench -warmup)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure both sides this many times, ours then the peer in each round, and compare the medians; "
                             "several rounds smooth out a machine whose speed drifts from minute to minute")
    parser.add_argument("--pair-figures", action="store_true",
                        help="in each round, time one figure at a time, ours and the peer back to back, and let the "
                             "side that goes first alternate from round to round; pairs measured seconds apart "
                             "suffer less from a drifting machine than whole rounds a minute apart")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--openblas-coretype", choices=["auto", "keep"], default="auto",
                        help="auto: when OpenBLAS chose kernels older than the CPU supports, restart with "
                             "OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2); keep: use the kernels OpenBLAS "
                             "chose. An OPENBLAS_CORETYPE set in the environment is always kept")
    parser.add_argument("--omp-wait-policy", choices=["active", "passive"],
                        help="set OMP_WAIT_POLICY for torch, replacing the environment's value "
                             "(without it: the environment's value, else libgomp's default)")
    parser.add_argument("--peer-malloc-tuning", action="store_true",
                        help="run torch under the glibc malloc settings that rgemma uses (GLIBC_TUNABLES, see rgemma/malloc.go)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    if args.warmup < 0:
        parser.error(f"--warmup must be at least 0, not {args.warmup}")

    core = openblas_core()
    if core in OLD_OPENBLAS_CORES and best_openblas_core(cpu_flags()):
        log(f"warning: torch runs with OpenBLAS's {core} kernels, older than this CPU supports; "
            "its matrix products are several times slower than they could be")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tmp = None
    if not args.model:
        tmp = tempfile.TemporaryDirectory(prefix="rgemma-peer-")
        args.model = os.path.join(tmp.name, args.preset)
        run(rgemma_cmd(args) + ["init", "-preset", args.preset, "-seed", str(args.seed), "-out", args.model])
    args.model = os.path.abspath(args.model)

    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    vocab, window = cfg["vocab_size"], cfg["attention_window_size"]

    # Our figures come first, while torch has not started its threads: with
    # OMP_WAIT_POLICY=ACTIVE they would keep spinning on both cores during
    # our run (our forward pass measured 36% slower that way).
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "ACTIVE":
        if args.pair_figures:
            log("warning: with OMP_WAIT_POLICY=ACTIVE and --pair-figures, torch's threads spin during all our runs")
        elif args.rounds > 1:
            log("warning: with OMP_WAIT_POLICY=ACTIVE, torch's threads spin during our runs after the first round")
    def bench_args(phases):
        return [
            "-only", phases, "-reps", str(args.reps), "-warmup", str(args.warmup), "-seed", str(args.seed),
            "-batch", str(args.batch), "-seq", str(args.seq), "-train-seq", str(args.train_seq),
            "-decode-batches", "1", "-prompt", str(args.prompt), "-decode-steps", str(args.decode_steps),
        ]

    ours_rounds = []
    if not args.pair_figures:
        log(f"ours, round 1 of {args.rounds}")
        ours_rounds.append(ours_json(args, bench_args("forward,train,decode")))
    check_ids = logits_check_ids(args, vocab, window)
    check_logits = ours_logits(args, check_ids)
    dcheck_ids = decode_check_ids(args, vocab) if args.decode_check_tokens > 0 else None
    dcheck_logits = ours_logits(args, dcheck_ids)["decode"] if dcheck_ids else None

    log(f"loading {args.model} with transformers {transformers.__version__}, torch {torch.__version__}")
    model = RecurrentGemmaForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)

    log("logits check")
    check = logits_check(model, vocab, check_ids, check_logits)
    dcheck = None
    if dcheck_ids:
        log(f"cached decode check on {args.decode_check_tokens} tokens")
        dcheck = decode_check(model, window, dcheck_ids, dcheck_logits)

    rng = random.Random(args.seed)
    forward_ids = random_ids(rng, args.batch, args.seq, vocab)
    prompt_ids = random_ids(rng, 1, args.prompt, vocab)
    train_ids = random_ids(rng, args.batch, args.train_seq, vocab)

    def peer_figure(phase, measured):
        """Time the peer's figure of one phase and store it in measured."""
        if phase == "forward":
            log(f"peer forward {args.batch} x {args.seq}")
            measured["forward"], measured["forward_seconds"] = peer_forward(model, forward_ids, args.reps, args.warmup)
        elif phase == "decode":
            log(f"peer decode batch 1, {args.decode_steps} steps per repetition")
            measured["decode"], measured["decode_seconds"] = peer_decode(
                model, prompt_ids, args.decode_steps, args.reps, args.warmup)
        else:
            log(f"peer training step {args.batch} x {args.train_seq} with AdamW")
            measured["train"], measured["train_seconds"], measured["train_losses"] = peer_train(
                model, train_ids, args.reps, args.warmup)

    peer_rounds = []
    for r in range(args.rounds):
        measured = {}
        if not args.pair_figures:
            if r > 0:
                log(f"ours, round {r + 1} of {args.rounds}")
                ours_rounds.append(ours_json(args, bench_args("forward,train,decode")))
            for phase in ("forward", "decode", "train"):
                peer_figure(phase, measured)
        else:
            # Our side runs one process per figure. The first one's report supplies the
            # backend and model lines, and each adds its own figure.
            sides = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
            merged = {}
            for phase in ("forward", "train", "decode"):
                for side in sides:
                    if side == "peer":
                        peer_figure(phase, measured)
                        continue
                    log(f"ours {phase}, round {r + 1} of {args.rounds}")
                    report = ours_json(args, bench_args(phase))
                    if not merged:
                        merged = dict(report)
                    merged[phase] = report[phase]
            ours_rounds.append(merged)
        peer_rounds.append(measured)
    ours = ours_rounds[0]
    losses = peer_rounds[0]["train_losses"]

    def ours_figure(o, key):
        if key == "decode":
            return next(d for d in o["decode"] if d["batch"] == 1)["tokens_per_s"]
        return o[key]["tokens_per_s"]

    names = {
        "forward": f"forward {args.batch}x{args.seq}",
        "train": f"training step {args.batch}x{args.train_seq} AdamW",
        "decode": f"decode batch 1 ({args.decode_steps} steps)",
    }
    print(f"ours: rgemma {ours['backend']} ({ours['backend_description']}), {ours['config']}")
    print(f"peer: transformers {transformers.__version__} RecurrentGemmaForCausalLM, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}, OpenBLAS kernels {core or '(none)'} "
          f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}), float32"
          + (", F.scaled_dot_product_attention stand-in (torch < 2.0)" if SDPA_STAND_IN else ""))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"{args.reps} repetitions, medians" + rounds_note(args) + "\n")
    results = []
    for key, name in names.items():
        ours_values = [ours_figure(o, key) for o in ours_rounds]
        peer_values = [pr[key] for pr in peer_rounds]
        ratios = [o / p for o, p in zip(ours_values, peer_values)]
        results.append({"figure": name, "ours_tokens_per_s": statistics.median(ours_values),
                        "peer_tokens_per_s": statistics.median(peer_values), "ratio": statistics.median(ratios),
                        "round_ratios": ratios, "ours_rounds_tokens_per_s": ours_values,
                        "peer_rounds_tokens_per_s": peer_values})
    if args.rounds > 1:
        print("ratio ours/peer in each round:")
        for res in results:
            print(f"  {res['figure']:<34} " + " ".join(f"{x:.2f}" for x in res["round_ratios"]))
        print(f"\nmedians over the {args.rounds} rounds:")
    print(f"{'figure':<34} {'ours tokens/s':>14} {'peer tokens/s':>14} {'ours/peer':>10}  target {TARGET_RATIO:g}x")
    for res in results:
        ratio = res["ratio"]
        print(f"{res['figure']:<34} {res['ours_tokens_per_s']:>14.0f} {res['peer_tokens_per_s']:>14.0f} "
              f"{ratio:>10.2f}  {'met' if ratio >= TARGET_RATIO else 'not met'}")
    print(f"\nlogits check on {check['tokens']} tokens (max |logit| {check['max_abs_logit']:.3g}): "
          f"max |ours - peer| = {check['max_abs_diff_forward']:.3g} (forward), "
          f"{check['max_abs_diff_decode']:.3g} (decoder); argmax agrees on {100 * check['argmax_agree']:.1f}% of tokens")
    if dcheck:
        print(f"cached decode check on {dcheck['tokens']} tokens, one per call: max |ours - peer| = "
              f"{dcheck['max_abs_diff_before']:.3g} before position {window - 1}, "
              f"{dcheck['max_abs_diff_from']:.3g} from position {window - 1} on "
              f"(first position above 1e-3: {dcheck['first_position_over_1e-3']})")
    print(f"peer training loss {losses[0]:.3f} -> {losses[-1]:.3f}; ours "
          f"{ours['train']['first_loss']:.3f} -> {ours['train']['last_loss']:.3f}")

    summary = {
        "results": results,
        "logits_check": check,
        "decode_check": dcheck,
        "peer": {
            "torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
            "openblas_core": core, "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "sdpa_stand_in": SDPA_STAND_IN, "forward_seconds": peer_rounds[0]["forward_seconds"],
            "train_seconds": peer_rounds[0]["train_seconds"], "decode_seconds": peer_rounds[0]["decode_seconds"],
            "train_losses": losses, "rounds": peer_rounds,
        },
        "ours": ours,
        "ours_rounds": ours_rounds,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
