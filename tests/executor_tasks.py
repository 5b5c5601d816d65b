"""Tasks for the executor tests (tests/test_executor.py), in a module of their own: spawned worker processes
import it to unpickle them, and it imports nothing heavy, so a restarted worker is ready at once."""
import os
import signal

from verify.errors import InputError


def square(task):
    return {"index": task["index"], "value": task["index"] ** 2, "pid": os.getpid()}


def die_on_three(task):
    """Task 3 kills its own worker process, every time (a chunk that always crashes its process)."""
    if task["index"] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return square(task)


def bad_input_on_two(task):
    if task["index"] == 2:
        raise InputError(f"task {task['index']} is bad")
    return square(task)



def report_and_sleep(task):
    """Write this worker's pid to task["dir"]/<index>.pid, then sleep a minute (a long chunk)."""
    import time
    path = os.path.join(task["dir"], f"{task['index']}.pid")
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    time.sleep(60)
    return square(task)
