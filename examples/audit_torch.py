"""Audit a PyTorch model:  verify audit examples/audit_torch.py:make

A small classifier and a batch built so that one first-layer pre-activation sits exactly on relu's kink in
exact arithmetic (1/2 - 1/2), and another sits on it only in float32 (2**-30 + 1 - 1 rounds to 0 in float32;
it is 2**-30 > 0 exactly).  The audit names those elements, says which gradient PyTorch returned, and whether it is
a selection gradient of the real function at this exact point.
"""
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x, labels):
        logits = self.out(torch.relu(self.hidden(x)))
        return torch.nn.functional.cross_entropy(logits, labels, reduction="sum")


def make():
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.hidden.weight[0] = torch.tensor([1.0, 1.0, -1.0])    # sample 0: 2**-30 + 1 - 1: a float kink
        net.hidden.bias[0] = 0.0
        net.hidden.weight[1] = torch.tensor([1.0, 0.0, 0.0])     # sample 1: 1/2 - 1/2: an exact kink
        net.hidden.bias[1] = -0.5
    x = torch.tensor([[2.0 ** -30, 1.0, 1.0], [0.5, 0.25, 0.125]])
    labels = torch.tensor([0, 1])
    return net, (x, labels)
