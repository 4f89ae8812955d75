"""The seed chapter's own code for its final comparison (Pigeon with 60, 15 and 30 hidden units,
batch 32, lr 0.005, 15 epochs, per-iteration curves), transcribed cell by cell so that it can be
timed as a whole process. Only the data folder is a parameter; plots go to the Agg backend.

    python bench/seed_notebook.py DATA_ROOT     # DATA_ROOT/MNIST/raw/ holds the training files
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # for plotting
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torchvision import datasets, transforms

root = sys.argv[1]
torch.manual_seed(1)  # set the random seed
img_to_tensor = transforms.ToTensor()
criterion = nn.BCEWithLogitsLoss()


class Pigeon(nn.Module):
    def __init__(self, num_hidden):
        super(Pigeon, self).__init__()
        self.layer1 = nn.Linear(28 * 28, num_hidden)
        self.layer2 = nn.Linear(num_hidden, 1)

    def forward(self, img):
        flattened = img.view(-1, 28 * 28)
        activation1 = self.layer1(flattened)
        activation1 = F.relu(activation1)
        activation2 = self.layer2(activation1)
        return activation2


# only use the first 1024 images for training
mnist_data = datasets.MNIST(root, train=True, transform=img_to_tensor)
mnist_data = list(mnist_data)
mnist_train = mnist_data[:1024]

# get a PyTorch tensor of the entire training set, for computing accuracy
tmp_loader = torch.utils.data.DataLoader(mnist_train, batch_size=1024)
all_train_imgs, all_train_labels = next(iter(tmp_loader))
all_train_actual = (all_train_labels < 3).reshape([1024, 1]).type(torch.FloatTensor)


def get_accuracy(model, input=all_train_imgs, actual=all_train_actual):
    """
    Return the accuracy of the model on the input data and actual ground truth.
    """
    prob = torch.sigmoid(model(input))
    pred = (prob > 0.5).type(torch.FloatTensor)
    correct = (pred == actual).type(torch.FloatTensor)
    return float(torch.mean(correct))


# get a PyTorch tensor of the entire validation , for computing accuracy
mnist_val = mnist_data[1024:2048]  # our choice of validation set
tmp_loader = torch.utils.data.DataLoader(mnist_val, batch_size=1024)
all_val_imgs, all_val_labels = next(iter(tmp_loader))
all_val_actual = (all_val_labels < 3).reshape([1024, 1]).type(torch.FloatTensor)


def plot_training_curve_with_val(model, batch_size=1, lr=0.005, num_epochs=1):
    train_loader = torch.utils.data.DataLoader(mnist_train, batch_size=batch_size)
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    iters = []
    losses = []
    train_acc = []
    val_acc = []

    # training
    n = 0  # the number of iterations
    for epoch in range(num_epochs):
        for imgs, labels in iter(train_loader):
            actual = (labels < 3).reshape([batch_size, 1]).type(torch.FloatTensor)
            out = model(imgs)
            loss = criterion(out, actual)  # compute the total loss
            loss.backward()  # compute updates for each parameter
            optimizer.step()  # make the updates for each parameter
            optimizer.zero_grad()  # a clean up step for PyTorch

            # save the current training information
            iters.append(n)
            losses.append(float(loss) / batch_size)  # compute *average* loss
            train_acc.append(get_accuracy(model))  # compute training accuracy
            val_acc.append(get_accuracy(model, all_val_imgs, all_val_actual))  # compute validation accuracy
            # increment the iteration number
            n += 1

    # plotting
    plt.title("Training Curve (batch_size={}, lr={})".format(batch_size, lr))
    plt.plot(iters, losses, label="Train")
    plt.xlabel("Iterations")
    plt.ylabel("Loss")
    plt.show()

    plt.title("Training Curve (batch_size={}, lr={})".format(batch_size, lr))
    plt.plot(iters, train_acc, label="Train")
    plt.plot(iters, val_acc, label="Validation")
    plt.xlabel("Iterations")
    plt.ylabel("Training Accuracy")
    plt.legend(loc="best")
    plt.show()

    print("Final Training Accuracy: {}".format(train_acc[-1]))
    print("Final Validation Accuracy: {}".format(val_acc[-1]))

    return model


pigeon = plot_training_curve_with_val(Pigeon(30), batch_size=32, lr=0.005, num_epochs=15)
larger_pigeon = plot_training_curve_with_val(Pigeon(60), batch_size=32, lr=0.005, num_epochs=15)
smaller_pigeon = plot_training_curve_with_val(Pigeon(15), batch_size=32, lr=0.005, num_epochs=15)
