import { measureCountyWide } from './commands.ts';
console.log(await measureCountyWide({ villages: 150, rounds: 5, dataRoot: '/dev/shm', progress: () => {} }));
console.log(await measureCountyWide({ villages: 150, rounds: 5, dataRoot: '/tmp', progress: () => {} }));
