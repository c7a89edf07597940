#!/usr/bin/python3
"""train_cpu_torch.py — the PyTorch half of scripts/bench/train_cpu/run: the same
NielsenNet (conv 20 5x5 same + pool, conv 40 5x5 valid + pool, fc 1000 +
dropout 0.5, fc 1000 + dropout 0.5, fc 10; ReLU), the same synthetic batch,
torch.optim.RMSprop, label smoothing 0.1, 2 threads.  Prints one line.
Usage: train_cpu_torch.py [steps] [batch] [threads]"""
import sys, time
import torch, torch.nn as nn, torch.nn.functional as F

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 64
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
torch.manual_seed(1)

class NielsenNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, padding=2)
        self.conv2 = nn.Conv2d(20, 40, 5)
        self.fc1 = nn.Linear(1000, 1000)
        self.fc2 = nn.Linear(1000, 1000)
        self.fc = nn.Linear(1000, classes)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), 0.5, self.training)
        x = F.dropout(F.relu(self.fc2(x)), 0.5, self.training)
        return self.fc(x)

net = NielsenNet()
opt = torch.optim.RMSprop(net.parameters(), lr=0.01, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=4e-5)
lb = torch.arange(batch) % 10
px = torch.zeros(batch, 1, 28, 28)
for i in range(batch):
    p = (torch.arange(784) * 7 + i * 13) % 50
    px[i, 0] = p.view(28, 28).float()
    px[i, 0, 2 + 2 * int(lb[i])] = 255
x = (px / 255 - 0.5) * 2

def step():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x), lb, label_smoothing=0.1)
    loss.backward()
    opt.step()
    return loss.item()

first = [step() for _ in range(5)][0]
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(steps):
    last = step()
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
print("pytorch %s: batch %d, %d threads, %d steps, %.1f images/s (%.2f ms/step, %.2f cpu-ms/step), loss %.3f -> %.3f"
      % (torch.__version__, batch, threads, steps, steps * batch / dt, 1000 * dt / steps, 1000 * cpu / steps, first, last))
