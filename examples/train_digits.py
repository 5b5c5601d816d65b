"""Training scripts for `verify watch`: a ReLU MLP and a LeNet-style CNN with max-pool on scikit-learn's digits.

    verify watch examples/train_digits.py:cnn --steps 300 --every 10 --log cnn.jsonl --plot cnn.png

Each function returns (model, optimizer, batches), as `verify watch` expects: the model's forward takes a
batch (images, labels) and returns the cross-entropy loss, the optimizer is plain SGD, and the batches are one
shuffled epoch of the 1797 digits (8x8 pixels, values k/16: exact in every float format), which `verify watch`
iterates again when they run out.  Weights are torch's default initialisation under a fixed seed.
"""
import torch
import torch.nn.functional as F
from torch import nn

BATCH = 32
LR = 0.1


class MLP(nn.Module):
    """64 -> 32 -> 10 with relu."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x, labels):
        return F.cross_entropy(self.out(F.relu(self.hidden(x.flatten(1)))), labels)


class LeNet(nn.Module):
    """LeNet's shape at 8x8: conv 3x3 (6 channels), relu, 2x2 max-pool, conv 3x3 (16), relu, 2x2 max-pool,
    a linear layer to the 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x, labels):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.cross_entropy(self.fc(x.flatten(1)), labels)


def batches(dtype=torch.float32, batch=BATCH, seed=0):
    """One epoch of the digits in a shuffled order: a list of (images (B, 1, 8, 8), labels)."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    x = torch.tensor(X / 16.0, dtype=dtype).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return [(x[order[i:i + batch]], y[order[i:i + batch]]) for i in range(0, len(y), batch)]


def mlp():
    torch.manual_seed(0)
    model = MLP()
    return model, torch.optim.SGD(model.parameters(), lr=LR), batches()


def cnn():
    torch.manual_seed(0)
    model = LeNet()
    return model, torch.optim.SGD(model.parameters(), lr=LR), batches()


def cnn_half():
    """The CNN in float16 (what Boustany's 16-bit runs do; torch computes it on the CPU too)."""
    torch.manual_seed(0)
    model = LeNet().half()
    return model, torch.optim.SGD(model.parameters(), lr=LR), batches(torch.float16)
