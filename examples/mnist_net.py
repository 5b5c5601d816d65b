"""Audit the CNN of pytorch/examples (mnist/main.py) on four digits:  verify audit examples/mnist_net.py:make

The network is pytorch/examples' ``Net`` as written there (two convolutions with relu, a 2x2 max-pool, dropout,
two fully connected layers, log_softmax), in eval mode, with its ``nll_loss``.  The data are the first four
scikit-learn digits (8x8, values 0..16), scaled to [0, 1], upsampled to 28x28 bilinearly and normalised with
MNIST's mean and standard deviation, as main.py normalises MNIST.  The weights are torch's default
initialisation under a fixed seed (no training: the audit is about what AD returns at this point).

What the audit finds here: many max-pool windows whose four values are identical (relu's zeros), which are
exact kinks where torch's max-pool backward picks the first element; and, rarely, a window that float32
decides on the other side of a kink (a float kink), named with its module, op and source line.
"""
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    """pytorch/examples mnist/main.py's Net, unchanged."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class Loss(nn.Module):
    """The training loss of main.py: nll_loss of the network's log-probabilities (mean over the batch)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, target):
        return F.nll_loss(self.net(x), target)


def digits(n=4):
    """The first ``n`` scikit-learn digits as a (n, 1, 28, 28) float32 batch normalised as main.py normalises
    MNIST, and their labels."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    x = torch.tensor(X[:n], dtype=torch.float32).reshape(n, 1, 8, 8) / 16
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x - 0.1307) / 0.3081
    return x, torch.tensor(y[:n], dtype=torch.int64)


def make(n=4, seed=1):
    """(model, args): the loss module of a freshly initialised Net (seed ``seed``, eval mode) and ``n`` digits."""
    torch.manual_seed(seed)
    model = Loss(Net()).eval()
    return model, digits(n)
