import { MemoryOutbox } from '../support/memory-outbox.ts';
import { describeOutboxContract } from '../support/outbox-contract.ts';

describeOutboxContract('in-memory fake', () => new MemoryOutbox());
