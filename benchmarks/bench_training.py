"""Training speed on Fashion-MNIST: digitlab against scikit-learn's MLPClassifier (and PyTorch
when installed) on the same recipe, beside the BLAS floor measured in the same run.

    python benchmarks/bench_training.py [--epochs 2] [--shapes 100,784] [--batches 10,128]
                                        [--seed-samples 3000]

Recipe for every contender: 784-h-10, relu hidden units, softmax + cross-entropy, Glorot-uniform
init, plain SGD (no momentum, no L2), constant learning rate, reshuffled every epoch, float32
for digitlab and PyTorch (scikit-learn casts float32 input to float32 too). Seconds per epoch
are the mean over the training passes (scoring excluded); PyTorch is timed at 1 and 2 threads
and the faster counts. The BLAS floor is an epoch's matrix-multiply FLOPs divided by the sgemm
rate measured here on a large product: no implementation can beat it. "GEMMs at this
batch" times those same products issued batch by batch, the floor of any mini-batch loop.
"""

from __future__ import annotations

import digitlab

digitlab.prepare_blas()  # before NumPy is imported: OpenBLAS reads its settings as it loads

import argparse
import os
import platform
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

from digitlab.config import DataConfig, ModelConfig, OptimConfig, TrainerConfig
from digitlab.data import load_dataset, make_split
from digitlab.nn.classifier import Classifier
from digitlab.nn.init import seed_streams
from digitlab.training import train

LEARNING_RATE = {10: 0.05, 128: 0.1}  # per-batch-size rates that train well in a few epochs
RESULTS = Path(__file__).with_name("results.md")


def sgemm_rate(repeats: int = 5) -> float:
    """FLOP/s of float32 matrix products of training size (best of `repeats`)."""
    rng = np.random.default_rng(0)
    a = rng.random((8192, 784), dtype=np.float32)
    b = rng.random((784, 784), dtype=np.float32)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / best


def gemm_only_seconds(n: int, sizes: list[int], batch: int, threads: int) -> float:
    """One epoch of just the matrix products backprop needs, at this batch size: the floor for
    any mini-batch implementation on this BLAS (small batches cannot reach the peak rate)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads, user_api="blas"):
        return _gemm_epoch(n, sizes, batch)


def _gemm_epoch(n: int, sizes: list[int], batch: int) -> float:
    rng = np.random.default_rng(0)
    weights = [rng.random((i, o), dtype=np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    acts = [rng.random((batch, s), dtype=np.float32) for s in sizes]
    grads = [np.empty_like(w) for w in weights]
    start = time.perf_counter()
    for _ in range(n // batch):
        for layer, w in enumerate(weights):
            np.matmul(acts[layer], w, out=acts[layer + 1])  # forward
        for layer in range(len(weights) - 1, -1, -1):
            np.matmul(acts[layer].T, acts[layer + 1], out=grads[layer])  # weight gradient
            if layer:
                acts[layer + 1] @ weights[layer].T  # backpropagated error
    return time.perf_counter() - start


def epoch_flops(n: int, sizes: list[int]) -> float:
    """Forward (2·in·out), weight gradient (2·in·out) and backpropagated error (2·in·out, all
    but the first layer) per sample and layer."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    per_sample = sum(4 * i * o for i, o in layers) + sum(2 * i * o for i, o in layers[1:])
    return float(n) * per_sample


def run_digitlab(split, hidden: int, batch: int, epochs: int) -> tuple[float, float]:
    clf = Classifier(ModelConfig(hidden=[hidden], activation="relu", init="glorot_uniform"),
                     OptimConfig(lr=LEARNING_RATE[batch]),
                     TrainerConfig(epochs=epochs, batch_size=batch), seed=0)
    seconds = [record.seconds for record in train(clf, split)]
    return float(np.mean(seconds)), clf.score(split.x_test, split.y_test)


def seed_recipe(dtype: str, engine: str) -> Classifier:
    return Classifier(ModelConfig(hidden=[784], activation="sigmoid", output="sigmoid",
                                  loss="quadratic", init="normal", derivative_quirk=True),
                      OptimConfig(lr=0.1), TrainerConfig(epochs=1, batch_size=1, order="file",
                                                         dtype=dtype, engine=engine), seed=0)


def seed_recipe_seconds(split, samples: int) -> dict[str, float]:
    """Seconds per 60k-sample epoch of the blog network's recipe at batch 1 (784-784-10, sigmoid,
    quadratic cost, N(0,1), file order, the derivative quirk): the blog network's own loop
    (benchmarks/blog_loop.py) and digitlab in float64 and float32, each timed on the same first
    `samples` training images and scaled to the full epoch (the blog network's loop needs minutes)."""
    from blog_loop import BlogNetwork

    x, y = split.x_train[:samples], split.y_train[:samples]
    scale = len(split.y_train) / samples
    seconds = {"blog loop (float64), OpenBLAS's default idle threads":
               blog_loop_default_openblas(x, y) * scale}
    start = time.perf_counter()
    BlogNetwork([784, 784, 10]).fit(x.astype(np.float64), y, learning_rate=0.1)
    seconds["blog loop (float64), OPENBLAS_THREAD_TIMEOUT as digitlab sets it"] = (
        time.perf_counter() - start) * scale
    for engine, dtype in (("auto", "float64"), ("auto", "float32"), ("numpy", "float32")):
        # the compiled loop's first call in a process loads it from Numba's cache (≈ 1 s, once)
        seed_recipe(dtype, engine).partial_fit(x[:2], y[:2], classes=split.classes)
        clf = seed_recipe(dtype, engine)
        start = time.perf_counter()
        clf.partial_fit(x, y, classes=split.classes)
        name = "compiled per-sample loop" if engine == "auto" else "NumPy/BLAS calls, engine=numpy"
        seconds[f"digitlab ({dtype}), {name}"] = (time.perf_counter() - start) * scale
    return seconds


def blog_loop_default_openblas(x: np.ndarray, y: np.ndarray) -> float:
    """Seconds of the blog network's loop over (x, y) in a process that does not import digitlab, so
    OpenBLAS keeps its default idle-thread spinning: the blog network as its users run it."""
    import subprocess
    import sys
    import tempfile

    code = ("import sys, time, numpy as np; sys.path.insert(0, sys.argv[1]); "
            "from blog_loop import BlogNetwork; d = np.load(sys.argv[2]); "
            "s = time.perf_counter(); BlogNetwork([784, 784, 10]).fit(d['x'], d['y'], "
            "learning_rate=0.1); print(time.perf_counter() - s)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "xy.npz", x=x.astype(np.float64), y=y)
        done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent),
                               str(Path(tmp) / "xy.npz")], env=env, capture_output=True,
                              text=True, check=True)
    return float(done.stdout)


def blas_thread_seconds(split, samples: int = 10000) -> list[str]:
    """digitlab's 784-784-10 pass at 1 and 2 BLAS threads (trainer.blas_threads), timed on the
    first `samples` images (3,000 at batch 1) and scaled to 60k: why blas_threads=auto takes one
    thread at batch 1 and every core above. With OPENBLAS_THREAD_TIMEOUT as digitlab sets it,
    unless the environment set it first (printed with the table). engine=numpy: at batch 1 the
    compiled loop makes no BLAS calls."""
    rows = []
    for batch in (1, 10, 128):
        samples = 3000 if batch == 1 else samples
        seconds = {}
        for threads in (1, 2):
            clf = Classifier(ModelConfig(hidden=[784], activation="relu", init="glorot_uniform"),
                             OptimConfig(lr=LEARNING_RATE.get(batch, 0.01)),
                             TrainerConfig(epochs=1, batch_size=batch, blas_threads=threads,
                                           engine="numpy"), seed=0)
            start = time.perf_counter()
            clf.partial_fit(split.x_train[:samples], split.y_train[:samples],
                            classes=split.classes)
            seconds[threads] = (time.perf_counter() - start) * len(split.y_train) / samples
        rows.append(f"| 784-784-10 | {batch} | {seconds[1]:.2f} | {seconds[2]:.2f} | "
                    f"{seconds[2] / seconds[1]:.1f}× |")
    return rows


def run_sklearn(split, hidden: int, batch: int, epochs: int) -> tuple[float, float]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="sgd",
                        batch_size=batch, learning_rate_init=LEARNING_RATE[batch], momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, max_iter=epochs, shuffle=True,
                        n_iter_no_change=epochs + 1, tol=0.0, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(split.x_train, split.y_train)
    return (time.perf_counter() - start) / epochs, clf.score(split.x_test, split.y_test)


def run_torch(split, hidden: int, batch: int, epochs: int) -> tuple[float, float, int] | None:
    """PyTorch eager on the same recipe, at 1 and at 2 threads: the faster is the reference."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    results = [(*_torch_epochs(split, hidden, batch, epochs, threads), threads)
               for threads in (1, 2)]
    return min(results)


def _torch_epochs(split, hidden: int, batch: int, epochs: int, threads: int) -> tuple[float, float]:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE[batch])
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(y))
        for i in range(0, len(y), batch):
            rows = order[i:i + batch]
            optimizer.zero_grad()
            loss_fn(model(x[rows]), y[rows]).backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        predicted = model(torch.from_numpy(split.x_test)).argmax(dim=1).numpy()
    return float(np.mean(seconds)), float(np.mean(predicted == split.y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--shapes", default="100,784")
    parser.add_argument("--batches", default="128,10")
    parser.add_argument("--no-sklearn", action="store_true", help="skip the slow reference")
    parser.add_argument("--seed-samples", type=int, default=3000,
                        help="images the batch-1 comparison with the blog network's loop is timed on (0: skip)")
    args = parser.parse_args()

    cfg = DataConfig(name="fashion_mnist", val_mode="none")
    split = make_split(load_dataset(cfg), cfg, seed_streams(0).split)
    # batch 1 first: PyTorch's thread pool, once started, slows this process's later loops
    seed_rows = []
    if args.seed_samples:
        seconds = seed_recipe_seconds(split, args.seed_samples)
        default, tuned = list(seconds.values())[:2]
        seed_header = ("| 784-784-10, batch 1, the blog network's recipe | s/epoch | default blog loop ÷ "
                       "this | blog loop with digitlab's OpenBLAS setting ÷ this |")
        seed_header += "\n|---|---|---|---|"
        print(f"\n{seed_header}")
        for name, value in seconds.items():
            seed_rows.append(f"| {name} | {value:.1f} | {default / value:.1f}× | "
                             f"{tuned / value:.1f}× |")
            print(seed_rows[-1], flush=True)
    rate = sgemm_rate()
    rows = []
    header = ("| shape | batch | digitlab s/epoch | acc | scikit-learn s/epoch | acc | "
              "sklearn ÷ digitlab | PyTorch s/epoch | acc | digitlab ÷ PyTorch | BLAS floor s | "
              "digitlab ÷ floor | GEMMs at this batch s | digitlab ÷ GEMMs |")
    print(f"sgemm rate measured here: {rate / 1e9:.0f} GFLOP/s; {args.epochs} epoch(s) each\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for hidden in map(int, args.shapes.split(",")):
        for batch in map(int, args.batches.split(",")):
            ours, our_acc = run_digitlab(split, hidden, batch, args.epochs)
            sk = None if args.no_sklearn else run_sklearn(split, hidden, batch, args.epochs)
            torch_result = run_torch(split, hidden, batch, args.epochs)
            floor = epoch_flops(len(split.y_train), [784, hidden, 10]) / rate
            gemms = min(gemm_only_seconds(len(split.y_train), [784, hidden, 10], batch, threads)
                        for threads in (1, 2))
            cells = [f"784-{hidden}-10", str(batch), f"{ours:.2f}", f"{our_acc:.4f}"]
            cells += ([f"{sk[0]:.2f}", f"{sk[1]:.4f}", f"{sk[0] / ours:.1f}×"] if sk
                      else ["—", "—", "—"])
            cells += ([f"{torch_result[0]:.2f} ({torch_result[2]} thr)", f"{torch_result[1]:.4f}",
                       f"{ours / torch_result[0]:.2f}"] if torch_result else ["—", "—", "—"])
            cells += [f"{floor:.2f}", f"{ours / floor:.2f}", f"{gemms:.2f}", f"{ours / gemms:.2f}"]
            row = "| " + " | ".join(cells) + " |"
            rows.append(row)
            print(row, flush=True)
    thread_header = "| shape | batch | 1 BLAS thread s/epoch | 2 BLAS threads s/epoch | 2 ÷ 1 |"
    thread_rows = blas_thread_seconds(split)
    print(f"\n{thread_header}\n|---|---|---|---|---|\n" + "\n".join(thread_rows), flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}"
    seed_table = ("" if not seed_rows else
                  f"\nBatch 1, timed on the first {args.seed_samples} images and scaled to 60k:\n\n"
                  + seed_header + "\n" + "\n".join(seed_rows) + "\n")
    RESULTS.write_text(
        f"# Training speed, Fashion-MNIST 60k (measured {date.today()}, {machine})\n\n"
        f"`make bench` ({args.epochs} epochs each; sgemm {rate / 1e9:.0f} GFLOP/s)\n\n"
        + header + "\n|" + "---|" * (header.count("|") - 1) + "\n" + "\n".join(rows) + "\n"
        + seed_table + "\nBLAS threads in digitlab's mini-batch loop (first 10,000 images, 3,000 at "
        "batch 1, scaled to 60k; OPENBLAS_THREAD_TIMEOUT="
        f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT')}):\n\n" + thread_header
        + "\n|---|---|---|---|---|\n" + "\n".join(thread_rows) + "\n")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
