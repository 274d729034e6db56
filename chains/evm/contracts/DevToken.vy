# pragma version 0.4.3
"""
@title DevToken
@notice A minimal ERC-20 for the xmargin devnet: the deployer mints, holders transfer.
        `mint_many` seeds many holders in one transaction (demo and benchmark set-up).
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

MAX_BATCH: constant(uint256) = 1000

name: public(String[32])
symbol: public(String[16])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
owner: public(address)


@deploy
def __init__(name_: String[32], symbol_: String[16], decimals_: uint8):
    self.name = name_
    self.symbol = symbol_
    self.decimals = decimals_
    self.owner = msg.sender


@internal
def _mint(receiver: address, amount: uint256):
    self.balanceOf[receiver] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert self.balanceOf[sender] >= amount, "insufficient balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def mint(receiver: address, amount: uint256):
    assert msg.sender == self.owner, "only owner"
    self._mint(receiver, amount)


@external
def mint_many(receivers: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    assert msg.sender == self.owner, "only owner"
    assert len(receivers) == len(amounts), "length mismatch"
    for i: uint256 in range(len(receivers), bound=MAX_BATCH):
        self._mint(receivers[i], amounts[i])


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    assert self.allowance[sender][msg.sender] >= amount, "insufficient allowance"
    self.allowance[sender][msg.sender] -= amount
    self._transfer(sender, receiver, amount)
    return True
